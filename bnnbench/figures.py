"""The report's figures (seaborn, PNG + SVG), drawn from `report`'s DataFrames.

  top1_<dataset>        our final top-1 per binarizer (mean ± sd over seeds) beside the
                        published number, one panel per architecture on a shared y-axis,
                        each label with its seeds (n) and total epochs
  curves_<dataset>      test top-1 against the global epoch, one line per cell
  qe_omega0             BiPer's Fig. 3: the closed-form QE against ω0 for several b, and the
                        same against s = b·ω0, with the measured QE of trained cells on it
  omega0_sweep_<...>    BiPer's Fig. 4a–c: top-1, QE and b against ω0, when cells of one
                        dataset/arch/binarizer were trained with several ω0; one line per
                        setting that differs otherwise (other swept values, total epochs)
Every figure is at most 1600 px wide at its 150 dpi; the QE figure is drawn only when a cell
of a binarizer with an ω0 is in the store.
Figures are built on matplotlib Figure objects with the Agg canvas, never through pyplot's
global state, so the report works headless and never changes the caller's backend.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib import cm as plt_cm
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .analysis import QE_LIMIT, qe_closed_form
from .collect import LEFT_OUT

QE_B_VALUES = (0.01, 0.02, 0.05, 0.1)   # Laplace scales b = mean|W| drawn in Fig. 3
DPI = 150
MAX_WIDTH_IN = 1600 / DPI               # a figure per dataset fits a screen and a page
OMEGA0_MAX = 100.0
_OURS, _PUBLISHED = "ours (mean ± sd over seeds)", "published"
_PALETTE = {_OURS: "tab:blue", _PUBLISHED: "0.25"}
_DODGE = 0.3


def _figure(width: float, height: float) -> Figure:
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


def _label(df: pd.DataFrame) -> pd.Series:
    return df["binarizer"] + df["setting"].map(lambda s: f" ({s})" if s else "")


def _arch_label(df: pd.DataFrame) -> pd.Series:
    return df["arch"] + df["variant"].map(lambda v: f" [{v}]" if v else "")


# --- top-1 beside the published number --------------------------------------------------------
def plot_top1(cells: pd.DataFrame, board: pd.DataFrame, dataset: str) -> Figure | None:
    fin = cells[(cells["dataset"] == dataset) & (cells["status"] == "finished")]
    rows = board[board["dataset"] == dataset]
    if fin.empty and rows["published_top1"].isna().all():
        return None
    ours = pd.DataFrame({"arch": _arch_label(fin), "label": _label(fin), "top1": fin["top1"],
                         "kind": _OURS})
    pub = rows.dropna(subset=["published_top1"])
    pub = pd.DataFrame({"arch": _arch_label(pub), "label": _label(pub),
                        "top1": pub["published_top1"], "kind": _PUBLISHED})
    data = pd.concat([ours, pub], ignore_index=True)
    archs = list(dict.fromkeys(_arch_label(rows)))
    labels = list(dict.fromkeys(_label(rows)))  # the board's (sorted) order in every panel
    per_arch = [max(1.5, _label(rows[_arch_label(rows) == a]).nunique()) for a in archs]
    width = min(max(0.9 * sum(per_arch) + 0.6 * len(archs), 6.5), MAX_WIDTH_IN)
    fig = _figure(width, 5.2)
    axes = fig.subplots(1, len(archs), squeeze=False, width_ratios=per_arch, sharey=True)[0]
    for ax, arch in zip(axes, archs):
        sub = data[data["arch"] == arch]
        present = set(_label(rows[_arch_label(rows) == arch]))  # incl. rows with no result yet
        order = [lab for lab in labels if lab in present]
        sns.pointplot(data=sub, x="label", y="top1", hue="kind", order=order,
                      hue_order=[_OURS, _PUBLISHED], palette=_PALETTE, errorbar="sd",
                      markers=["o", "D"], linestyles="none", dodge=_DODGE, capsize=0.1,
                      err_kws={"linewidth": 1.2}, ax=ax)
        _annotate_top1(ax, sub, order)
        ax.set_title(arch)
        ax.set_xlabel("")
        ax.set_ylabel("test top-1 (%)" if ax is axes[0] else "")
        here = rows[_arch_label(rows) == arch]
        budget = dict(zip(_label(here), here["epochs"].map(
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
    data["label"] = _label(data)
    data["arch_label"] = _arch_label(data)
    data["epochs_trained"] = data["global_epoch"] + 1
    archs = list(dict.fromkeys(data["arch_label"]))
    ncols = min(3, len(archs))
    nrows = math.ceil(len(archs) / ncols)
    fig = _figure(min(3.4 * ncols + 2.4, MAX_WIDTH_IN), 3.6 * nrows)
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


# --- BiPer's Fig. 3: QE against ω0 --------------------------------------------------------------
def qe_curve_data(b_values=QE_B_VALUES, omega0_max: float = OMEGA0_MAX,
                  points: int = 5000) -> pd.DataFrame:
    """The closed-form QE(b·ω0) per b on an ω0 grid (curve "b=…"), and QE(s) on an s grid
    (curve "s"); columns curve, b, omega0, s, qe."""
    omega0 = np.linspace(omega0_max / points, omega0_max, points)
    frames = [pd.DataFrame({"curve": f"b={b:g}", "b": b, "omega0": omega0, "s": b * omega0,
                            "qe": qe_closed_form(b * omega0)}) for b in b_values]
    s = np.concatenate([np.linspace(0.001, 6.0, 6000), np.geomspace(6.0, 1000.0, 400)[1:]])
    frames.append(pd.DataFrame({"curve": "s", "b": np.nan, "omega0": np.nan, "s": s,
                                "qe": qe_closed_form(s)}))
    return pd.concat(frames, ignore_index=True)


def _measured_qe(cells: pd.DataFrame) -> pd.DataFrame:
    m = cells[(cells["status"] == "finished")].dropna(subset=["qe", "b", "omega0"]).copy()
    m["s"] = m["b"] * m["omega0"]
    m["label"] = m["dataset"] + " " + m["arch"] + " · " + _label(m)
    return m


def plot_qe(cells: pd.DataFrame) -> tuple[Figure, pd.DataFrame]:
    """(figure, the curves' data): QE against ω0 per b, and against s = b·ω0, with the final
    QE of trained cells (result.json qe, b, ω0), each coloured by its own b."""
    data = qe_curve_data()
    measured = _measured_qe(cells)
    b_all = list(QE_B_VALUES) + list(measured["b"])
    norm = LogNorm(min(b_all) / 1.5, max(b_all) * 1.5)  # no curve at the palette's pale end
    cmap = sns.color_palette("viridis_r", as_cmap=True)
    fig = _figure(MAX_WIDTH_IN, 4.4)
    ax_w, ax_s = fig.subplots(1, 2)
    for b in QE_B_VALUES:
        curve = data[data["curve"] == f"b={b:g}"]
        ax_w.plot(curve["omega0"], curve["qe"], color=cmap(norm(b)), linewidth=1.6,
                  label=f"b = {b:g}")
    uni = data[data["curve"] == "s"]
    peak = uni.loc[uni["qe"].idxmax()]
    ax_s.plot(uni["s"], uni["qe"], color="0.2", linewidth=1.6, label="closed form QE(s)")
    ax_s.axhline(QE_LIMIT, color="0.5", linestyle=":", linewidth=1,
                 label=f"s → ∞: 1/2 − 4/π² = {QE_LIMIT:.4f}")
    ax_s.axvline(peak["s"], color="0.5", linestyle="--", linewidth=1,
                 label=f"maximum {peak['qe']:.6f} at s = {peak['s']:.3f}")
    markers = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*"]
    for i, (label, group) in enumerate(measured.groupby("label", sort=True)):
        kw = dict(marker=markers[i % len(markers)], s=55, edgecolors="black", linewidths=0.8,
                  zorder=5, c=[cmap(norm(b)) for b in group["b"]])
        ax_w.scatter(group["omega0"], group["qe"], **kw)
        ax_s.scatter(group["s"], group["qe"], label=label, **kw)
    ax_w.set_xlim(0, max([OMEGA0_MAX, *(measured["omega0"] * 1.05)]))
    ax_s.set_xscale("log")  # the peak near s = 1 and the s → ∞ plateau on one axis
    ax_s.set_xlim(0.05, max([30.0, *(measured["s"] * 1.5)]))
    for ax in (ax_w, ax_s):
        ax.set_ylim(0, 0.115)
        ax.grid(alpha=0.4)
    ax_w.legend(title="closed form, Laplace(0, b) weights", frameon=False, loc="lower right",
                fontsize="small", title_fontsize="small")
    ax_w.set_xlabel("ω0 (frequency of sin(ω0·w))")
    ax_w.set_ylabel("QE = E[ŵ²] − (E|ŵ|)²")
    ax_w.set_title("(a) QE against ω0 for several b (BiPer Fig. 3)")
    ax_s.legend(frameon=False, loc="lower right", fontsize="small")
    ax_s.set_xlabel("s = b·ω0 (log scale)")
    ax_s.set_ylabel("QE")
    ax_s.set_title("(b) the same against s = b·ω0")
    if len(measured):
        bar = fig.colorbar(plt_cm.ScalarMappable(norm=norm, cmap=cmap), ax=[ax_w, ax_s],
                           pad=0.01, fraction=0.03)
        bar.set_label("b = mean|W| (measured points)")
    return fig, data


# --- BiPer's Fig. 4a-c: the ω0 sweep -------------------------------------------------------------
def sweeps(cells: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    """((dataset, arch, variant, binarizer), finished cells) with more than one ω0; each cell's
    `series` names what else differs between them (other swept settings, total epochs), so
    that cells of different settings are never joined into one line."""
    fin = cells[(cells["status"] == "finished")].dropna(subset=["omega0"])
    out = []
    for key, group in fin.groupby(["dataset", "arch", "variant", "binarizer"], sort=True):
        if group["omega0"].nunique() > 1:
            out.append((key, group.assign(series=_series(group))))
    return out


def _series(group: pd.DataFrame) -> pd.Series:
    """Per cell, its settings other than ω0, with its total epochs where those differ."""
    rest = group["setting"].map(lambda s: "; ".join(
        part for part in s.split("; ") if part and not part.startswith("omega0=")))
    if group["epochs"].nunique() > 1:
        epochs = group["epochs"].map(lambda e: f"{e:.0f} epochs")
        rest = (rest + "; " + epochs).str.strip("; ")
    return rest


def plot_sweep(group: pd.DataFrame, published: float | None = None, source: str = "") -> Figure:
    """Three panels against ω0: final top-1, measured QE (with the closed form at the measured
    b), and b; `published` (if any) is drawn as a line, labelled with its `source`."""
    first = group.iloc[0]
    fig = _figure(MAX_WIDTH_IN, 3.8)
    axes = fig.subplots(1, 3)
    group = group if "series" in group else group.assign(series="")
    colors = sns.color_palette("tab10", group["series"].nunique())
    panels = (("top1", "test top-1 (%)", "(a) accuracy"), ("qe", "QE (measured)", "(b) QE"),
              ("b", "b = mean|W|", "(c) weight scale b"))
    for ax, (col, ylabel, title) in zip(axes, panels):
        sub = group.dropna(subset=[col])
        if sub.empty:
            ax.set_visible(False)
            continue
        for (series, line), color in zip(sub.groupby("series", sort=True), colors):
            sns.lineplot(data=line, x="omega0", y=col, errorbar="sd", marker="o", color=color,
                         err_style="bars", err_kws={"capsize": 3}, ax=ax,
                         label="mean ± sd over seeds" + (f" ({series})" if series else ""))
        sns.scatterplot(data=sub, x="omega0", y=col, color="0.4", s=14, alpha=0.7, ax=ax,
                        label="one seed")
        if col == "qe":
            pred = sub.groupby("omega0")[["b"]].mean().reset_index()
            ax.plot(pred["omega0"], qe_closed_form(pred["b"] * pred["omega0"]), "--",
                    color="tab:orange", label="closed form QE(b·ω0), Laplace weights")
        if col == "top1" and published is not None and not math.isnan(published):
            ax.axhline(published, color="0.2", linestyle=":",
                       label=f"published {published:g}" + (f" ({source})" if source else ""))
        ax.set_xlabel("ω0")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.4)
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle(f"{first['dataset']} {first['arch']}"
                 + (f" [{first['variant']}]" if first["variant"] else "")
                 + f" {first['binarizer']}: ω0 sweep (BiPer Fig. 4)", x=0.02, ha="left")
    return fig


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
        in_store = cells[(cells["path"] != "") & ~cells["status"].isin(LEFT_OUT)]
        if in_store["omega0"].notna().any():   # a binarizer with an ω0 is in the store
            fig, _ = plot_qe(cells)
            files += save(fig, out / "qe_omega0")
        for (dataset, arch, variant, binarizer), group in sweeps(cells):
            row = board[(board["dataset"] == dataset) & (board["arch"] == arch)
                        & (board["binarizer"] == binarizer)]
            published = row["published_top1"].iloc[0] if len(row) else None
            source = row["published_source"].iloc[0] if len(row) else ""
            files += save(plot_sweep(group, published, source),
                          out / _slug("omega0_sweep", dataset, arch, binarizer))
    return files
