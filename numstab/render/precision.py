"""Draw a :class:`numstab.precision.PrecisionAudit`: a terminal table, a heat map, HTML sections.

Rendering only: every number and every verdict comes from the audit. The terminal table has one row
per GEMM-like layer and one column per recipe: ``ok`` where the layer tolerates the recipe, else which
limit its worst operand broke (``underflow``, ``overflow``, ``rel mse``); the last column says whether
to keep the layer in high precision. The heat map shows, per layer and recipe, how many dB of SQNR the
layer's worst operand has below a Gaussian tensor in that recipe (the limit is 6 dB); crosses mark the
recipes a layer does not tolerate, whatever the reason.

Examples:
    >>> import io, torch
    >>> from numstab.precision import audit
    >>> from numstab.render.terminal import make_console
    >>> net = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    >>> result = audit(net, torch.randn(16, 32, generator=torch.Generator().manual_seed(0)),
    ...                recipes=["bfloat16", "mxfp8_e4m3"])
    >>> console = make_console(file=io.StringIO(), width=100)
    >>> console.print(rich_audit(result))
    >>> "keep in high precision: none" in console.file.getvalue()
    True
"""

from __future__ import annotations

import numstab.render._rich_import  # noqa: F401  isort: skip  (before rich: keeps the global RNG)

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from numstab.render.terminal import VERDICT_STYLES

if TYPE_CHECKING:
    from numstab.probe.precision_audit import PrecisionAudit
    from numstab.render.html import HtmlPage

__all__ = ["rich_audit", "audit_table", "cell_word", "headline", "heatmap", "add_sections", "html_audit",
           "SHORT_NAMES"]

#: Column headers of the recipes, short enough for a terminal.
SHORT_NAMES = {
    "bfloat16": "bf16", "float16": "fp16", "e4m3_cast": "e4m3", "e5m2_cast": "e5m2",
    "e4m3_tensor": "e4m3 t", "e5m2_tensor": "e5m2 t", "e4m3_delayed": "e4m3 d", "e5m2_delayed": "e5m2 d",
    "mxfp8_e4m3": "mx e4m3", "mxfp8_e5m2": "mx e5m2", "nvfp4": "nvfp4",
}

_LIMIT_DB = 6.0  # the heat map's reference line: REL_MSE_FACTOR 4 = 6.02 dB (drawn, not judged, here)


def headline(audit: PrecisionAudit) -> str:
    """One line: how many layers, the loss scale, and the layers to keep in high precision."""
    keep = ", ".join(audit.keep_high_precision) or "none"
    grads = f"float16 loss scale {audit.loss_scale:g}" if "float16" in audit.recipes else ""
    no_backward = "" if audit.backward else "no backward pass (no output gradients)"
    extra = "; ".join(p for p in (grads, no_backward) if p)
    return f"{len(audit.layers)} GEMM-like layers, {len(audit.recipes)} recipes" + (
        f" ({extra})" if extra else "") + f"; keep in high precision: {keep}"


def cell_word(problem: str | None) -> str:
    """The word a table cell shows for a layer-recipe problem line (None: tolerated).

    Examples:
        >>> cell_word(None), cell_word("nvfp4: input of fc: underflow 53% > 11.8%")
        ('ok', 'underflow')
    """
    if problem is None:
        return "ok"
    reason = problem.rsplit(": ", 1)[-1]
    for word in ("overflow", "underflow"):
        if reason.startswith(word):
            return word
    return "rel mse"


def _cells(audit: PrecisionAudit) -> list[tuple[Any, list[str]]]:
    rows = []
    for layer in audit.layers:
        by_recipe = {p.split(":", 1)[0]: p for p in layer.problems}
        rows.append((layer, [cell_word(by_recipe.get(r)) for r in audit.recipes]))
    return rows


def audit_table(audit: PrecisionAudit) -> Table:
    """The per-layer rich Table: layer, kind, one cell per recipe, the recommendation."""
    table = Table(title=Text("low-precision audit"), box=box.SIMPLE_HEAD, show_edge=False,
                  title_justify="left")
    for header in ["layer", "kind", *(SHORT_NAMES.get(r, r) for r in audit.recipes), "keep"]:
        table.add_column(Text(header))
    for layer, words in _cells(audit):
        cells = [Text(w, style=VERDICT_STYLES["ok" if w == "ok" else "bad"]) for w in words]
        keep = Text("high", style=VERDICT_STYLES["bad"]) if layer.keep_high_precision else Text("no")
        table.add_row(Text(layer.name), Text(layer.kind), *cells, keep)
    return table


def rich_audit(audit: PrecisionAudit) -> Group:
    """The audit as rich renderables: the headline, the table, then each kept layer's problems."""
    parts: list[Any] = [Text(headline(audit), style="bold"), audit_table(audit)]
    for layer in audit.layers:
        if layer.keep_high_precision:
            parts.append(Text(f"{layer.name}: keep in high precision", style=VERDICT_STYLES["bad"]))
            parts += [Text(f"  {p}") for p in layer.problems]
    return Group(*parts)


def heatmap(audit: PrecisionAudit) -> Any:
    """A matplotlib Figure: layers x recipes, coloured by the worst operand's SQNR shortfall in dB."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    from numstab.render import style

    names, recipes = [la.name for la in audit.layers], list(audit.recipes)
    values = np.array([[la.shortfall_db[r] for r in recipes] for la in audit.layers], dtype=float)
    shown = np.clip(np.nan_to_num(values, nan=30.0, posinf=30.0, neginf=-6.0), -6.0, 30.0)
    width, height = max(5.0, 1.8 + 0.55 * len(recipes)), max(3.0, 1.6 + 0.24 * len(names))
    fig, ax = style.figure(width=width, height=height)
    norm = TwoSlopeNorm(vmin=-6, vcenter=_LIMIT_DB, vmax=30)
    image = ax.imshow(shown, aspect="auto", cmap="RdYlGn_r", norm=norm)
    for i, layer in enumerate(audit.layers):
        for j, recipe in enumerate(recipes):
            if recipe not in layer.tolerated:
                ax.text(j, i, "×", ha="center", va="center", fontsize=8, color="black")
    ax.set_xticks(range(len(recipes)), [SHORT_NAMES.get(r, r) for r in recipes], rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names, fontsize=max(4.5, min(8.0, 400 / max(len(names), 1))))
    ax.grid(False)
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("SQNR shortfall (dB), limit 6")
    style.label(ax, x="recipe", y="layer", title="Signal lost per layer and recipe (× = not tolerated)",
                legend=False)
    return fig


def _layer_rows(audit: PrecisionAudit) -> list[list[Any]]:
    return [[la.name, la.kind, "keep high" if la.keep_high_precision else "ok",
             ", ".join(la.tolerated) or "none"] for la in audit.layers]


def _record_rows(audit: PrecisionAudit) -> list[list[Any]]:
    return [[r.layer, r.tensor, r.recipe, r.dim, 100 * r.overflow, 100 * r.underflow, 100 * r.subnormal,
             r.rel_mse, r.sqnr_db, r.headroom_bits, r.problem or "ok"] for r in audit.records]


def _limit_rows(audit: PrecisionAudit) -> list[list[Any]]:
    from numstab.probe import precision_rules as rules

    rows = []
    for recipe in audit.recipes:
        lim = rules.limits(recipe)
        under, rel = rules.GAUSSIAN_FLOOR[recipe]
        rows.append([recipe, rel, lim.rel_mse, 100 * under, 100 * lim.underflow,
                     "yes" if lim.overflow_to_inf else "no (saturates)"])
    return rows


def add_sections(page: HtmlPage, audit: PrecisionAudit) -> HtmlPage:
    """Append the audit to an HTML page: verdict, heat map, per-layer table, limits, every record."""
    section = page.section("precision-audit", "Low-precision audit")
    section.verdict("bad" if audit.keep_high_precision else "ok", headline(audit))
    alt = (f"Heat map of {len(audit.layers)} layers by {len(audit.recipes)} recipes; layers to keep in high "
           f"precision: {', '.join(audit.keep_high_precision) or 'none'}.")
    section.figure(heatmap(audit), alt=alt, caption="Colour: the worst operand's SQNR below what the recipe "
                   "gives a standard normal tensor (green: at or above it; red: more than 6 dB below). "
                   "×: the layer does not tolerate the recipe (underflow, overflow to inf or rel MSE).")
    section.table(["layer", "kind", "verdict", "tolerates"], _layer_rows(audit), verdict_column=2)
    problems = [[la.name, p] for la in audit.layers for p in la.problems]
    if problems:
        section.table(["layer", "recipe: operand: problem"], problems, caption="Recipes not tolerated")
    page.section("precision-audit-limits", "Limits of each recipe").text(
        "An operand is outside a recipe's limits when its relative MSE exceeds 4x what the recipe gives a "
        "standard normal tensor (6 dB of SQNR), when more than 5 percentage points of its non-zero values "
        "beyond that tensor's share underflow to zero, or when any value overflows to inf.", label="Rule",
    ).table(["recipe", "Gaussian rel MSE", "rel MSE limit", "Gaussian underflow %", "underflow limit %",
             "overflow to inf"], _limit_rows(audit))
    page.section("precision-audit-records", "Every operand under every recipe").table(
        ["layer", "tensor", "recipe", "dim", "overflow %", "underflow %", "subnormal %", "rel MSE", "SQNR dB",
         "headroom bits", "problem"], _record_rows(audit), verdict_column=10)
    return page


def html_audit(audit: PrecisionAudit, *, title: str = "numstab precision audit") -> HtmlPage:
    """A self-contained HTML page with the audit alone."""
    from numstab.render.html import HtmlPage

    return add_sections(HtmlPage(title, subtitle=headline(audit)), audit)
