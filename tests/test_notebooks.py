"""examples/chapter.ipynb and its Chinese twin run headlessly on the quick setting (nbclient).

Each notebook is saved with its outputs cleared; executed, every figure reaches the notebook as
``image/png`` or ``text/html``, no ``text/plain`` output is over 2 KB, and both run in under two minutes
together. The kernel is the ipykernel of this interpreter, with this checkout first on its path.
"""

from __future__ import annotations

import os
import pathlib
import time

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is a dev dependency")
nbclient = pytest.importorskip("nbclient", reason="nbclient is a dev dependency")

ROOT = pathlib.Path(__file__).parents[1]
NOTEBOOKS = [ROOT / "examples" / "chapter.ipynb", ROOT / "examples" / "chapter.zh.ipynb"]
PLAIN_LIMIT = 2048
BUDGET_S = 120.0


def _outputs(nb) -> list[tuple[int, dict]]:
    return [(i, out) for i, cell in enumerate(nb.cells) if cell.cell_type == "code" for out in cell.outputs]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_saved_notebook_has_no_outputs(path: pathlib.Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert _outputs(nb) == []
    assert all(c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def _draws(source: str) -> bool:
    """A cell that shows a figure: a lab result, the book's d2l.plot, or a Figure as its last line."""
    lines = source.strip().splitlines()
    return any(line.startswith(("r = lab.", "d2l.plot(")) for line in lines) or lines[-1] == "fig"


def _execute(path: pathlib.Path):
    nb = nbformat.read(path, as_version=4)
    env = {"NUMSTAB_NOTEBOOK_QUICK": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # "python3" is ipykernel's native kernel: this interpreter (sys.executable), so the same environment
    client = nbclient.NotebookClient(
        nb, timeout=90, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        client.execute()
    return nb


def test_both_notebooks_run_in_two_minutes_with_small_outputs_and_every_figure_shown() -> None:
    start = time.perf_counter()
    executed = [_execute(path) for path in NOTEBOOKS]
    seconds = time.perf_counter() - start
    assert seconds < BUDGET_S, f"the notebooks took {seconds:.0f} s together"
    for path, nb in zip(NOTEBOOKS, executed, strict=True):
        outputs = _outputs(nb)
        assert not [o for _, o in outputs if o.output_type == "error"], path.name
        for index, out in outputs:
            stream = out.output_type == "stream"
            text = out.get("text", "") if stream else out.get("data", {}).get("text/plain", "")
            assert len(str(text).encode()) <= PLAIN_LIMIT, (path.name, index, str(text)[:200])
            if out.output_type == "execute_result":  # the table as text, not rich's own Jupyter output
                assert text.strip(), (path.name, index)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not _draws(cell.source):
                continue
            kinds = {kind for out in cell.outputs for kind in out.get("data", {})}
            assert kinds & {"image/png", "text/html"}, (path.name, index, kinds)
        rich = [o for _, o in outputs if "text/html" in o.get("data", {})]
        assert len(rich) >= 8 and all("<img" in o["data"]["text/html"] for o in rich)
        pages = "".join(o["data"]["text/html"] for o in rich)
        if path.name == "chapter.zh.ipynb":  # the tables in Chinese, quoting the Chinese edition
            assert "课程说“合理”" in pages and "请注意，虽然迷你批次随机梯度下降不会破坏这种对称性" in pages
        else:  # the lecture's 50 layers: ReLU at 0.2, "reasonable", is flagged and explained
            assert "relu at 0.2: the lecture says &#x27;reasonable&#x27;" in pages
