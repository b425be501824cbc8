"""The versioned JSON report: strict JSON on disk, exact round trip (non-finite floats too), clear errors."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numstab.errors import InvalidArgumentError, NumstabTypeError
from numstab.jsonio import SCHEMA, decode, dump, dumps, encode, load, loads


def _strict(text: str) -> object:
    """Parse ``text`` as strict JSON: Python's json would otherwise accept NaN and Infinity."""

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_schema_identifier() -> None:
    assert SCHEMA == "numstab.report/1"


def test_file_is_strict_json_with_header_first(tmp_path: pathlib.Path) -> None:
    payload = {"verdict": "exploding", "norms": [1.0, math.inf, -math.inf, math.nan]}
    path = dump("check", payload, tmp_path / "r.json")
    text = path.read_text(encoding="utf-8")
    assert _strict(text) == {
        "schema": "numstab.report/1",
        "kind": "check",
        "verdict": "exploding",
        "norms": [1.0, "inf", "-inf", "nan"],
    }
    assert text.startswith('{\n  "schema": "numstab.report/1",\n  "kind": "check",')
    assert text.endswith("}\n")


def test_round_trip_of_nested_non_finite_values(tmp_path: pathlib.Path) -> None:
    payload = {
        "layers": [{"name": "fc1", "grad_std": 0.5, "out_of_range": {"float16": 1.0}},
                   {"name": "fc2", "grad_std": math.inf, "out_of_range": {"float16": math.nan}}],
        "tiny": 5e-324,  # the smallest subnormal double survives the text form exactly
        "big": 1.7976931348623157e308,
        "count": 3,
        "flag": True,
        "missing": None,
        "text": "σ_w² < 1",
    }
    back = load(dump("check", payload, tmp_path / "r.json"), kind="check")
    assert back["schema"] == SCHEMA and back["kind"] == "check"
    assert back["layers"][1]["grad_std"] == math.inf
    assert math.isnan(back["layers"][1]["out_of_range"]["float16"])
    back["layers"][1]["out_of_range"]["float16"] = None
    payload["layers"][1]["out_of_range"]["float16"] = None
    assert {k: back[k] for k in payload} == payload


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=8))
def test_round_trip_is_bit_exact_for_any_float(values: list[float]) -> None:
    back = loads(dumps("tour", {"values": values}))["values"]
    assert len(back) == len(values)
    for original, restored in zip(values, back, strict=True):
        assert (math.isnan(original) and math.isnan(restored)) or (
            original == restored and math.copysign(1, original) == math.copysign(1, restored)
        )


def test_encode_numpy_dataclasses_and_paths() -> None:
    @dataclasses.dataclass(frozen=True)
    class Point:
        depth: int
        norm: float

        def to_dict(self) -> dict:
            return {"depth": self.depth, "norm": self.norm}

    data = {
        "array": np.array([[1.0, np.inf]], dtype=np.float32),
        "scalar": np.float64(-np.inf),
        "int": np.int64(7),
        "point": Point(3, math.nan),
        "path": pathlib.PurePosixPath("out/report.html"),
        "tuple": (1, 2),
    }
    assert encode(data) == {
        "array": [[1.0, "inf"]],
        "scalar": "-inf",
        "int": 7,
        "point": {"depth": 3, "norm": "nan"},
        "path": "out/report.html",
        "tuple": [1, 2],
    }
    assert decode(encode(data))["scalar"] == -math.inf


def test_unencodable_value_is_named() -> None:
    with pytest.raises(NumstabTypeError, match="cannot write a set to JSON"):
        dumps("check", {"x": {1, 2}})


def test_reserved_keys_and_bad_kind() -> None:
    with pytest.raises(InvalidArgumentError, match="must not contain the key\\(s\\) 'schema'"):
        dumps("check", {"schema": "mine"})
    with pytest.raises(InvalidArgumentError, match="kind must be a non-empty string"):
        dumps("", {})


def test_other_schema_version_names_file_found_and_expected(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "old.json"
    path.write_text('{"schema": "numstab.report/2", "kind": "check"}')
    with pytest.raises(InvalidArgumentError) as err:
        load(path)
    message = str(err.value)
    assert repr(str(path)) in message
    assert "has schema 'numstab.report/2'" in message and "this numstab reads 'numstab.report/1'" in message


def test_other_kind_is_refused(tmp_path: pathlib.Path) -> None:
    path = dump("tour", {}, tmp_path / "report.json")
    with pytest.raises(InvalidArgumentError, match="is a 'tour' report, expected a 'check' report"):
        load(path, kind="check")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"is not valid JSON \(line 1, column 2"),
        ("[1, 2]", r"is not a numstab report \(no \"schema\" field\)"),
        ('{"kind": "check"}', r"is not a numstab report"),
    ],
)
def test_not_a_report(tmp_path: pathlib.Path, text: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(InvalidArgumentError, match=message):
        load(path)


def test_missing_file_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"cannot read report '.*nope.json': No such file"):
        load(tmp_path / "nope.json")


def test_failed_dump_keeps_previous_report(tmp_path: pathlib.Path) -> None:
    path = dump("check", {"verdict": "healthy"}, tmp_path / "report.json")
    with pytest.raises(NumstabTypeError):
        dump("check", {"verdict": object()}, path)  # fails while encoding: the old file must survive
    assert load(path)["verdict"] == "healthy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_schema_document_names_every_field_of_a_check_report() -> None:
    """docs/report-schema.md is the contract: a field the check report writes must be documented there."""
    import torch

    import numstab

    doc = (pathlib.Path(__file__).parents[1] / "docs" / "report-schema.md").read_text(encoding="utf-8")
    assert f"`{SCHEMA}`" in doc
    generator = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    report = loads(numstab.diagnose(model, torch.randn(8, 4, generator=generator),
                                    loss_fn=lambda out: out.pow(2).mean()).to_json(), kind="check")
    undocumented = [key for key in report if f"`{key}`" not in doc]
    undocumented += [f"layers[].{key}" for key in report["layers"][0] if f"`{key}`" not in doc]
    assert undocumented == []
