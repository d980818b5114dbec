"""BiPer's figures in the report (its `report_figures` hook): the quantisation error against ω0
(the paper's Fig. 3) and the ω0 sweep (Fig. 4a–c). Kept apart from biper.py so that a change
here never changes BiPer's recorded code identity (that file's hash): trained cells stay
current. pandas, seaborn and matplotlib are imported where a figure is drawn."""
import math

import numpy as np

from .biper import QE_LIMIT, qe_closed_form

QE_B_VALUES = (0.01, 0.02, 0.05, 0.1)   # Laplace scales b = mean|W| drawn in Fig. 3
OMEGA0_MAX = 100.0


def _qe_columns(cells):
    """The report's cells with the columns these figures plot: omega0 (the final stage's),
    qe and b (result.json's binarizer/qe and binarizer/b; NaN where none finished)."""
    import pandas as pd

    nan = pd.Series(math.nan, index=cells.index)
    omega0 = cells["final_stage_params"].map(lambda params: params.get("omega0"))
    return cells.assign(omega0=pd.to_numeric(omega0), qe=cells.get("binarizer/qe", nan),
                        b=cells.get("binarizer/b", nan))


# --- Fig. 3: QE against ω0 ----------------------------------------------------------------------
def qe_curve_data(b_values=QE_B_VALUES, omega0_max: float = OMEGA0_MAX, points: int = 5000):
    """The closed-form QE(b·ω0) per b on an ω0 grid (curve "b=…"), and QE(s) on an s grid
    (curve "s"); columns curve, b, omega0, s, qe."""
    import pandas as pd

    omega0 = np.linspace(omega0_max / points, omega0_max, points)
    frames = [pd.DataFrame({"curve": f"b={b:g}", "b": b, "omega0": omega0, "s": b * omega0,
                            "qe": qe_closed_form(b * omega0)}) for b in b_values]
    s = np.concatenate([np.linspace(0.001, 6.0, 6000), np.geomspace(6.0, 1000.0, 400)[1:]])
    frames.append(pd.DataFrame({"curve": "s", "b": np.nan, "omega0": np.nan, "s": s,
                                "qe": qe_closed_form(s)}))
    return pd.concat(frames, ignore_index=True)


def _measured_qe(cells, kit):
    m = cells[(cells["status"] == "finished")].dropna(subset=["qe", "b", "omega0"]).copy()
    m["s"] = m["b"] * m["omega0"]
    m["label"] = m["dataset"] + " " + m["arch"] + " · " + kit.entry_label(m)
    return m


def plot_qe(cells, kit):
    """QE against ω0 per b, and against s = b·ω0, with the final QE of trained cells
    (`_qe_columns`: qe, b, ω0), each coloured by its own b."""
    import seaborn as sns
    from matplotlib import cm as plt_cm
    from matplotlib.colors import LogNorm

    data = qe_curve_data()
    measured = _measured_qe(cells, kit)
    b_all = list(QE_B_VALUES) + list(measured["b"])
    norm = LogNorm(min(b_all) / 1.5, max(b_all) * 1.5)  # no curve at the palette's pale end
    cmap = sns.color_palette("viridis_r", as_cmap=True)
    fig = kit.new_figure(kit.max_width_in, 4.4)
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
    return fig


# --- Fig. 4a-c: the ω0 sweep ---------------------------------------------------------------------
def sweeps(cells) -> list:
    """((dataset, arch, variant, binarizer), finished cells) with more than one ω0; each cell's
    `series` names what else differs between them (other swept settings, total epochs), so
    that cells of different settings are never joined into one line."""
    fin = cells[(cells["status"] == "finished")].dropna(subset=["omega0"])
    out = []
    for key, group in fin.groupby(["dataset", "arch", "variant", "binarizer"], sort=True):
        if group["omega0"].nunique() > 1:
            out.append((key, group.assign(series=_series(group))))
    return out


def _series(group):
    """Per cell, its settings other than ω0, with its total epochs where those differ."""
    rest = group["setting"].map(lambda s: "; ".join(
        part for part in s.split("; ") if part and not part.startswith("omega0=")))
    if group["epochs"].nunique() > 1:
        epochs = group["epochs"].map(lambda e: f"{e:.0f} epochs")
        rest = (rest + "; " + epochs).str.strip("; ")
    return rest


def plot_sweep(group, kit, published: float | None = None, source: str = ""):
    """Three panels against ω0: final top-1, measured QE (with the closed form at the measured
    b), and b; `published` (if any) is drawn as a line, labelled with its `source`."""
    import seaborn as sns

    first = group.iloc[0]
    fig = kit.new_figure(kit.max_width_in, 3.8)
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


def figures(name, kit):
    """(stem, figure) of Fig. 3 with the QE of the trained cells of binarizer `name`
    (qe_omega0), and Fig. 4a–c for each dataset × arch trained with several ω0."""
    cells = _qe_columns(kit.cells[kit.cells["binarizer"] == name])
    yield "qe_omega0", plot_qe(cells, kit)
    board = kit.board
    for (dataset, arch, _, binarizer), group in sweeps(cells):
        row = board[(board["dataset"] == dataset) & (board["arch"] == arch)
                    & (board["binarizer"] == binarizer)]
        published = row["published_top1"].iloc[0] if len(row) else None
        source = row["published_source"].iloc[0] if len(row) else ""
        yield (f"omega0_sweep_{dataset}_{arch}_{binarizer}",
               plot_sweep(group, kit, published, source))
