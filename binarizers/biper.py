"""BiPer (spec: biper): the binarizer, its paper's quantisation-error analysis, and the report's
figures of it (the paper's Fig. 3 and 4a–c), drawn through the `report_figures` hook."""
import math

import numpy as np
import torch
from torch import nn

from bnnbench import Binarizer, approx_sign, channel_scale, register, sign_identity_ste


@register("biper")
class BiPer(Binarizer):
    """BiPer: binary periodic weights, a square wave with its sine as surrogate (spec: biper).

    Forward   stage "sine":   ŵ = sin(ω0·W)            (real-valued weights)
              stage "binary": w_b = sign(sin(ω0·W))
              a_b = sign(a0),  a0 = a / sqrt(var_{C,H,W} a + 1e-5) per sample in training (as ReCU)
              y = α_c · conv(a_b, w_b),  α learnable per output channel, init U[0, 1)
    Backward  weights: identity STE through sign, so ∂w_b/∂W = ω0·cos(ω0·W) (no clipping window);
              activations: ApproxSign on a0.
    Extra loss  τ · mean(sin²(ω0·W)) per layer (CIFAR code; τ = 0.037 stage 1, 0.0468 stage 2).
    ω0 is fixed, the same in both stages; stage 2 starts from all of stage 1's tensors.
    Metrics   qe: the empirical quantisation error of each layer, b: its Laplace scale mean|W|
              (spec: biper, "Quantisation error"); the report draws them (`report_figures`).
    CIFAR-10 stage 2 is the official loop's: epochs 1..299 of a 300-epoch schedule
    (`start_epoch = 1`, so its warm-up starts at 0.4·lr). The official stage 2 starts from stage
    1's epoch of best *test* accuracy; bnnbench starts from the final one, since choosing on the
    test set is questionable (`init_from = "best"` in the binary stage's recipe gives the
    official choice, and reports flag such cells).
    Paper: Vargas et al., "BiPer: Binary Neural Networks using a Periodic Function", CVPR 2024.
    """

    paper = "BiPer (Vargas et al.)"
    year = 2024
    spec = "biper"
    stages = ("sine", "binary")
    omega0: float = 20.0
    reg_tau: float = 0.037
    recipes = {
        "cifar10": {
            "sine": dict(epochs=600, batch_size=256, lr=0.021, weight_decay=0.0016,
                         warmup_epochs=5, normalize="imagenet", binarizer={"reg_tau": 0.037}),
            "binary": dict(epochs=299, start_epoch=1, batch_size=256, lr=0.0037,
                           weight_decay=0.00016, warmup_epochs=5, normalize="imagenet",
                           binarizer={"reg_tau": 0.0468}),
        },
        # ImageNet: no regulariser; decay only on conv/fc weights and α (not BN, not downsample)
        "imagenet": {
            "sine": dict(epochs=200, batch_size=512, lr=0.1, weight_decay=1e-4, decay="conv_fc",
                         warmup_epochs=5, binarizer={"reg_tau": 0.0}),
            "binary": dict(epochs=100, batch_size=512, lr=0.01, weight_decay=1e-4,
                           decay="conv_fc", warmup_epochs=0, binarizer={"reg_tau": 0.0}),
        },
    }

    def build(self, layer):
        self.alpha = nn.Parameter(torch.rand(layer.out_channels))

    def weight(self, w):
        w_hat = torch.sin(self.omega0 * w)
        return w_hat if self.stage == "sine" else sign_identity_ste(w_hat)

    def activation(self, x):
        return approx_sign(x, per_sample_normalised=self.training)

    def output(self, y):
        return channel_scale(y, self.alpha)

    def metrics(self, w):
        return {"qe": qe_empirical(w, self.omega0), "b": laplace_scale(w)}

    @classmethod
    def report_figures(cls, kit):
        """The paper's Fig. 3 with the QE of BiPer's trained cells (qe_omega0) and its Fig. 4a–c
        for each dataset × arch trained with several ω0 (omega0_sweep_<dataset>_<arch>_biper)."""
        cells = _qe_columns(kit.cells[kit.cells["binarizer"] == cls.name])
        yield "qe_omega0", plot_qe(cells, kit)
        board = kit.board
        for (dataset, arch, _, binarizer), group in sweeps(cells):
            row = board[(board["dataset"] == dataset) & (board["arch"] == arch)
                        & (board["binarizer"] == binarizer)]
            published = row["published_top1"].iloc[0] if len(row) else None
            source = row["published_source"].iloc[0] if len(row) else ""
            yield (f"omega0_sweep_{dataset}_{arch}_{binarizer}",
                   plot_sweep(group, kit, published, source))

    def loss(self, w):
        if self.reg_tau == 0.0:
            return None
        return self.reg_tau * torch.sin(self.omega0 * w).pow(2).mean()


# --- the quantisation error (QE) analysis (spec: biper, "Quantisation error") -------------------
# For Laplace(0, b) weights and ŵ = sin(ω0·w), the QE of the best scaled binarisation α·sign(ŵ),
# min_α E[(ŵ − α·sign ŵ)²] = E[ŵ²] − (E|ŵ|)², depends on s = b·ω0 only.
def qe_closed_form(s):
    """QE(s) = E[sin²] − (E|sin|)² with E[sin²] = 2s²/(1+4s²), E|sin| = s·coth(π/2s)/(1+s²).

    Accepts a float or an array of s = b·ω0 > 0; the limit s → ∞ is 1/2 − 4/π².
    """
    s = np.asarray(s, dtype=np.float64)
    mean_sq = 2 * s**2 / (1 + 4 * s**2)
    mean_abs = s / np.tanh(math.pi / (2 * s)) / (1 + s**2)
    out = mean_sq - mean_abs**2
    return float(out) if out.ndim == 0 else out


QE_LIMIT = 0.5 - 4 / math.pi**2


def qe_maximum() -> tuple[float, float]:
    """(s*, QE(s*)): where the closed form peaks."""
    from scipy.optimize import minimize_scalar  # here: training never needs scipy
    res = minimize_scalar(lambda s: -qe_closed_form(s), bounds=(0.1, 5.0), method="bounded",
                          options={"xatol": 1e-10})
    return float(res.x), float(-res.fun)


def laplace_scale(w: torch.Tensor) -> float:
    """The maximum-likelihood Laplace scale of zero-mean weights: b = mean|W|."""
    return w.detach().abs().mean().item()


def qe_empirical(w: torch.Tensor, omega0: float) -> float:
    """The closed form's expectations replaced by means over a layer's weights."""
    w_hat = torch.sin(omega0 * w.detach().double())
    return (w_hat.pow(2).mean() - w_hat.abs().mean().pow(2)).item()


def l1_sign_gap(w: torch.Tensor, omega0: float) -> float:
    """The official repository script's measure (NOT the paper's QE): mean |sin − sign(sin)|
    of one layer, without the optimal scale α; that script sums it over layers."""
    w_hat = torch.sin(omega0 * w.detach().double())
    return (w_hat - torch.sign(w_hat)).abs().mean().item()


# --- the report's figures: QE against ω0 (Fig. 3) and the ω0 sweep (Fig. 4a–c) ----------------
# pandas, seaborn and matplotlib are imported where a figure is drawn: training never needs them
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
