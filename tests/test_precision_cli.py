"""`numstab check --precision`: the audit table after the check, in the JSON and the HTML; one-line errors."""

from __future__ import annotations

import pytest

from numstab import jsonio
from numstab.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_check_with_precision_prints_writes_json_and_html(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "check", "tiny_resnet", "--recipes", "mxfp8_e4m3,nvfp4,e4m3_cast",
                       "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html"))
    assert code == 0
    assert "8 GEMM-like layers, 3 recipes" in out and "low-precision audit" in out
    doc = jsonio.load(tmp_path / "r.json", kind="check")
    assert doc["verdict"] == "healthy" and doc["precision"]["recipes"] == ["mxfp8_e4m3", "nvfp4", "e4m3_cast"]
    assert doc["precision"]["keep_high_precision"] == []
    assert 'id="precision-audit"' in (tmp_path / "r.html").read_text()


def test_precision_is_skipped_when_the_model_is_already_nonfinite(capsys, tmp_path) -> None:
    path = tmp_path / "nan.py"
    path.write_text("import torch\nfrom torch import nn\n\nclass Log(nn.Module):\n"
                    "    def forward(self, x):\n        return torch.log(x - 10)\n\n"
                    "def build():\n    return nn.Sequential(nn.Linear(4, 4), Log(), nn.Linear(4, 2))\n")
    code, out, err = run(capsys, "check", f"{path}:build", "--input-shape", "8,4", "--precision")
    assert code == 0 and "precision audit skipped" in err and "GEMM-like" not in out


def test_an_unknown_recipe_exits_2_with_one_line_listing_the_valid_ones(capsys) -> None:
    code, _, err = run(capsys, "check", "lstm", "--recipes", "fp4")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown recipe 'fp4': use one of bfloat16, float16, e4m3_cast" in err


def test_json_dash_carries_the_audit_and_nothing_else(capsys) -> None:
    code, out, _ = run(capsys, "check", "transformer", "--recipes", "mxfp8_e4m3", "--json", "-")
    doc = jsonio.loads(out, kind="check")
    assert code == 0 and doc["precision"]["layers"][0]["tolerated"] == ["mxfp8_e4m3"]
    assert {r["tensor"] for r in doc["precision"]["records"]} == {"input", "weight", "grad_output"}
