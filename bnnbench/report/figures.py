"""The report's figures (seaborn, PNG + SVG), drawn from `report`'s DataFrames.

  top1_<dataset>        our final top-1 per binarizer (mean ± sd over seeds) beside the
                        published number, one panel per architecture on a shared y-axis,
                        each label with its seeds (n) and total epochs
  curves_<dataset>      test top-1 against the global epoch, one line per cell
  <a binarizer's own>    the figures of a binarizer's `report_figures` hook, for each
                        binarizer with a cell in the store (BiPer's: qe_omega0 and
                        omega0_sweep_<...>, its paper's Fig. 3 and 4a–c)
Every figure is at most 1600 px wide at its 150 dpi.
Figures are built on matplotlib Figure objects with the Agg canvas, never through pyplot's
global state, so the report works headless and never changes the caller's backend.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..api import registry
from ..errors import BnnbenchError
from .collect import LEFT_OUT

DPI = 150
MAX_WIDTH_IN = 1600 / DPI               # a figure per dataset fits a screen and a page
_OURS, _PUBLISHED = "ours (mean ± sd over seeds)", "published"
_PALETTE = {_OURS: "tab:blue", _PUBLISHED: "0.25"}
_DODGE = 0.3


def new_figure(width: float, height: float) -> Figure:
    """A Figure on the Agg canvas (no pyplot state: headless, the caller's backend untouched)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write `stem`.png (DPI) and `stem`.svg."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=DPI)
    fig.set_layout_engine("none")  # keep the layout just computed: the SVG looks the same
    fig.savefig(paths[1])
    return paths


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join(p for p in parts if p)).strip("-")


def entry_label(df: pd.DataFrame) -> pd.Series:
    """Each row's binarizer with its swept setting, e.g. "biper (omega0=20)", as every figure
    names an entry."""
    return df["binarizer"] + df["setting"].map(lambda s: f" ({s})" if s else "")


def _arch_label(df: pd.DataFrame) -> pd.Series:
    return df["arch"] + df["variant"].map(lambda v: f" [{v}]" if v else "")


# --- top-1 beside the published number --------------------------------------------------------
def plot_top1(cells: pd.DataFrame, board: pd.DataFrame, dataset: str) -> Figure | None:
    fin = cells[(cells["dataset"] == dataset) & (cells["status"] == "finished")]
    rows = board[board["dataset"] == dataset]
    if fin.empty and rows["published_top1"].isna().all():
        return None
    ours = pd.DataFrame({"arch": _arch_label(fin), "label": entry_label(fin), "top1": fin["top1"],
                         "kind": _OURS})
    pub = rows.dropna(subset=["published_top1"])
    pub = pd.DataFrame({"arch": _arch_label(pub), "label": entry_label(pub),
                        "top1": pub["published_top1"], "kind": _PUBLISHED})
    data = pd.concat([ours, pub], ignore_index=True)
    archs = list(dict.fromkeys(_arch_label(rows)))
    labels = list(dict.fromkeys(entry_label(rows)))  # the board's (sorted) order in every panel
    per_arch = [max(1.5, entry_label(rows[_arch_label(rows) == a]).nunique()) for a in archs]
    width = min(max(0.9 * sum(per_arch) + 0.6 * len(archs), 6.5), MAX_WIDTH_IN)
    fig = new_figure(width, 5.2)
    axes = fig.subplots(1, len(archs), squeeze=False, width_ratios=per_arch, sharey=True)[0]
    for ax, arch in zip(axes, archs):
        sub = data[data["arch"] == arch]
        present = set(entry_label(rows[_arch_label(rows) == arch]))  # incl. rows with no result yet
        order = [lab for lab in labels if lab in present]
        sns.pointplot(data=sub, x="label", y="top1", hue="kind", order=order,
                      hue_order=[_OURS, _PUBLISHED], palette=_PALETTE, errorbar="sd",
                      markers=["o", "D"], linestyles="none", dodge=_DODGE, capsize=0.1,
                      err_kws={"linewidth": 1.2}, ax=ax)
        _annotate_top1(ax, sub, order)
        ax.set_xlim(-1.4, len(order) + 0.6)   # room for the values written beside the ends
        ax.set_title(arch)
        ax.set_xlabel("")
        ax.set_ylabel("test top-1 (%)" if ax is axes[0] else "")
        here = rows[_arch_label(rows) == arch]
        budget = dict(zip(entry_label(here), here["epochs"].map(
            lambda e: "" if pd.isna(e) else f", {int(e)} ep")))
        n = sub[sub["kind"] == _OURS]["label"].value_counts()
        rotate = max(map(len, order), default=0) > 8 or len(order) > 5
        ax.set_xticks(range(len(order)), [f"{lab}{', ' if rotate else chr(10)}n={n.get(lab, 0)}"
                                          f"{budget[lab]}" for lab in order])
        ax.tick_params(axis="x", rotation=40 if rotate else 0)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right" if tick.get_rotation() else "center")
        ax.grid(axis="y", alpha=0.4)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    _pad_ylim(axes[0])
    handles, texts = axes[0].get_legend_handles_labels()
    kinds = set(data["kind"])
    keep = [(h, t) for h, t in zip(handles, texts) if t in kinds]
    if keep:
        fig.legend(*zip(*keep), loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(f"{dataset}: final top-1" + (" vs published" if len(pub) else ""),
                 x=0.02, ha="left")
    return fig


def _annotate_top1(ax, sub: pd.DataFrame, order: list[str]) -> None:
    """Write each value beside its marker and say where we have no run."""
    means = sub.groupby(["label", "kind"])["top1"].agg(["mean", "count"])
    for x, label in enumerate(order):
        for kind, sign in ((_OURS, -1), (_PUBLISHED, 1)):  # markers sit at x ∓ dodge/2
            if (label, kind) in means.index:
                ax.annotate(f"{means.loc[(label, kind), 'mean']:.2f}",
                            (x + sign * _DODGE / 2, means.loc[(label, kind), "mean"]),
                            xytext=(sign * 9, 0), textcoords="offset points",
                            ha="left" if sign > 0 else "right", va="center",
                            fontsize="x-small", color=_PALETTE[kind])
        if (label, _OURS) not in means.index:
            ax.annotate("no finished run", (x - _DODGE / 2, 0.03),
                        xycoords=("data", "axes fraction"),
                        ha="center", fontsize="x-small", color="0.4", style="italic")


def _pad_ylim(ax, min_span: float = 4.0) -> None:
    """Room for the markers at the edges of the (shared) y-axis, and never a zoom to less
    than `min_span` points, so a 0.8-point gap does not look like a chasm."""
    lo, hi = ax.get_ylim()
    lo, hi = lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo)  # room for the markers at the edges
    ax.set_ylim(lo, hi)
    if hi - lo < min_span:
        mid = (hi + lo) / 2
        ax.set_ylim(mid - min_span / 2, mid + min_span / 2)


# --- learning curves ---------------------------------------------------------------------------
def plot_curves(metrics: pd.DataFrame, dataset: str) -> Figure | None:
    data = metrics[metrics["dataset"] == dataset].copy()
    if data.empty:
        return None
    data["label"] = entry_label(data)
    data["arch_label"] = _arch_label(data)
    data["epochs_trained"] = data["global_epoch"] + 1
    archs = list(dict.fromkeys(data["arch_label"]))
    ncols = min(3, len(archs))
    nrows = math.ceil(len(archs) / ncols)
    fig = new_figure(min(3.4 * ncols + 2.4, MAX_WIDTH_IN), 3.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    hue_order = sorted(data["label"].unique())
    palette = dict(zip(hue_order, sns.color_palette("tab10", len(hue_order))))
    stages = list(dict.fromkeys(data["stage"].dropna()))
    style = "stage" if len(stages) > 1 else None
    # few epochs: dots, so that a one-epoch stage (no line segment) still shows
    dots = {"marker": "o", "markersize": 3} if data["epochs_trained"].max() <= 40 else {}
    for ax, arch in zip(axes, archs):
        sub = data[data["arch_label"] == arch]
        sns.lineplot(data=sub, x="epochs_trained", y="top1", hue="label", hue_order=hue_order,
                     palette=palette, units="cell_id", estimator=None, style=style,
                     style_order=stages if style else None, linewidth=1.2, ax=ax,
                     legend=ax is axes[0], **dots)
        ax.set_title(arch)
        ax.set_xlabel("epochs trained (stages in sequence)")
        ax.set_ylabel("test top-1 (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.4)
    for ax in axes[len(archs):]:
        ax.set_visible(False)
    legend = axes[0].get_legend()
    if legend is not None:
        handles, texts = axes[0].get_legend_handles_labels()
        legend.remove()
        texts = [{"label": "binarizer"}.get(t, t) for t in texts]
        fig.legend(handles, texts, loc="outside right upper", frameon=False)
    fig.suptitle(f"{dataset}: learning curves (one line per cell)", x=0.02, ha="left")
    return fig


# --- a binarizer's own figures ------------------------------------------------------------------
@dataclass(frozen=True)
class FigureKit:
    """What a binarizer's `report_figures` hook draws from: the report's DataFrames, and the
    helpers that give its figures the report's look (a plugin imports nothing of the report)."""

    cells: pd.DataFrame
    board: pd.DataFrame
    metrics: pd.DataFrame
    max_width_in = MAX_WIDTH_IN
    new_figure = staticmethod(new_figure)
    entry_label = staticmethod(entry_label)


def binarizer_figures(kit: FigureKit) -> Iterator[tuple[str, Figure]]:
    """(stem, figure) from the `report_figures` hook of each binarizer with a cell in the store,
    by name, one at a time (saved before the next is drawn); a binarizer whose plugin is not
    loaded draws none."""
    cells = kit.cells
    in_store = cells[(cells["path"] != "") & ~cells["status"].isin(LEFT_OUT)]
    for name in sorted(set(in_store["binarizer"])):
        try:
            cls = registry.get(name)
        except BnnbenchError:
            continue
        for stem, fig in cls.report_figures(kit):
            yield _slug(stem), fig


# --- all of them ---------------------------------------------------------------------------------
def write_all(cells: pd.DataFrame, board: pd.DataFrame, metrics: pd.DataFrame,
              out: Path) -> list[Path]:
    """Draw every figure the data supports into `out`; returns the files written."""
    out = Path(out)
    files: list[Path] = []
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        for dataset in dict.fromkeys(board["dataset"]):
            for stem, fig in ((f"top1_{dataset}", plot_top1(cells, board, dataset)),
                              (f"curves_{dataset}", plot_curves(metrics, dataset))):
                if fig is not None:
                    files += save(fig, out / _slug(stem))
        for stem, fig in binarizer_figures(FigureKit(cells, board, metrics)):
            files += save(fig, out / stem)
    return files
