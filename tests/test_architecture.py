"""The layering holds: imports run one way, no cycles, no private name used across packages, every module
imports alone.

The layers are the import-linter contract in pyproject.toml (docs/architecture.md explains them):
ground (errors, files, resources, notation, jsonio, display, _repr, precision, activations, layers) ->
theory -> init / examples -> lab / probe / monitor -> render -> tour -> cli.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import grimp
import pytest
from importlinter import api as importlinter_api
from importlinter.application import use_cases

ROOT = pathlib.Path(__file__).parents[1]
PACKAGE = ROOT / "numstab"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("numstab", cache_dir=None)


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":  # runs the CLI when imported
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_layers_contract_of_pyproject_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    config = str(ROOT / "pyproject.toml")
    assert [c["type"] for c in importlinter_api.read_configuration(config)["contracts_options"]] == ["layers"]
    kept = use_cases.lint_imports(config_filename=config, cache_dir=None, no_logo=True)
    assert kept, capsys.readouterr().out  # the broken imports, as lint-imports prints them


def test_no_import_cycle_among_modules(graph: grimp.ImportGraph) -> None:
    """Tarjan's strongly connected components of the module graph (lazy imports inside functions count)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert cycles == []


def _owner(dotted: str) -> str | None:
    """Who may use a private name: its top-level package (``numstab.lab`` for ``numstab.lab._batched`` and
    ``numstab.lab.training._select``), its module for a top-level module's; None for a public name."""
    parts = dotted.split(".")
    for k, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[: min(k, 2)])
    return None


def _private_uses(path: pathlib.Path, module: str) -> list[str]:
    """``numstab...._name`` imported, or ``alias._name`` read off an imported numstab module, from outside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    used: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("numstab"):
            for alias in node.names:
                used.append(f"{node.module}.{alias.name}")
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("numstab"):
                    used.append(alias.name)
                    bound = alias.asname or "numstab"  # `import numstab.x` binds the name numstab
                    aliases[bound] = alias.name if alias.asname else "numstab"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.append(f"{aliases[node.value.id]}.{node.attr}")
    outside = []
    for name in used:
        owner = _owner(name)
        if owner is not None and not (module == owner or module.startswith(owner + ".")):
            outside.append(f"{module} uses {name}")
    return outside


def test_no_private_name_is_used_across_packages() -> None:
    offenders = []
    for module in _modules():
        relative = module.replace(".", "/")
        path = ROOT / (f"{relative}/__init__.py" if (ROOT / relative).is_dir() else f"{relative}.py")
        offenders += _private_uses(path, module)
    assert offenders == []


def test_the_private_name_check_can_fail(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from numstab.lab import training\nfrom numstab.lab._batched import Rule\ntraining._select\n"
    )
    assert _private_uses(source, "numstab.render.training") == [
        "numstab.render.training uses numstab.lab._batched.Rule",
        "numstab.render.training uses numstab.lab.training._select",
    ]
    assert _private_uses(source, "numstab.lab.other") == []


_IMPORT_EACH_ALONE = """
import importlib, os, sys, traceback
# The third-party libraries numstab builds on are loaded once; numstab itself never is, in this process:
# each module is imported first in a fork of it, so no numstab module is loaded before the one tested.
for name in ("numpy", "scipy.special", "scipy.integrate", "scipy.optimize", "torch", "matplotlib.figure",
             "rich.console", "typer"):
    importlib.import_module(name)
pending, failed = dict(), []
for module in sys.argv[1:]:
    if len(pending) >= (os.cpu_count() or 1):  # one child per core at a time
        pid, status = os.wait()
        if status:
            failed.append(pending[pid])
        del pending[pid]
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    pending[pid] = module
while pending:
    pid, status = os.wait()
    if status:
        failed.append(pending.pop(pid))
    else:
        del pending[pid]
print("FAILED " + " ".join(sorted(failed)) if failed else "OK")
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="forks a process per module")
def test_every_module_imports_alone_in_a_fresh_process() -> None:
    """Each module is imported first, alone: an import that works only after another module would fail."""
    modules = _modules()
    assert len(modules) > 50
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_ALONE, *modules], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1:] == ["OK"], result.stdout + result.stderr


def test_import_numstab_in_a_fresh_interpreter_loads_no_heavy_library() -> None:
    heavy = "('torch', 'matplotlib', 'rich')"
    code = f"import sys, numstab; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_old_module_paths_still_import_the_same_objects_with_a_future_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numstab._moved
    import numstab.jsonio
    import numstab.render.html
    import numstab.render.lab
    from numstab.lab.taylor import TaylorTable  # numstab.lab.taylor itself is the function

    for name in [n for n in sys.modules if numstab._moved.new_name(n)]:  # imported earlier: warn again
        monkeypatch.delitem(sys.modules, name)

    with pytest.warns(FutureWarning, match="numstab.report moved to numstab.render"):
        from numstab.report import lab as old_lab
    assert old_lab is numstab.render.lab
    with pytest.warns(FutureWarning, match="numstab.jsonio"):
        from numstab.report import jsonio as old_jsonio
    assert old_jsonio is numstab.jsonio
    with pytest.warns(FutureWarning) as caught:
        from numstab.report.html import HtmlReport
    assert {str(w.message).split(":")[0] for w in caught} == {
        "numstab.report.html moved to numstab.render.html", "numstab.render.html.HtmlReport is now HtmlPage"
    }
    assert HtmlReport is numstab.render.html.HtmlPage
    with pytest.warns(FutureWarning, match="numstab.lab.taylor_check moved to numstab.lab.taylor"):
        import numstab.lab.taylor_check as old_taylor
    assert old_taylor.TaylorTable is TaylorTable
    assert old_taylor.__spec__.name == "numstab.lab.taylor"  # the module keeps its own spec
