"""BiPer (spec: biper): the binarizer and its paper's quantisation-error analysis. The report's
figures of it (the paper's Fig. 3 and 4a–c) are in biper_figures.py, drawn through the
`report_figures` hook: a run's recorded code identity is this file's hash, so a change to a
figure never makes trained BiPer cells stale."""
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
    # this file before the package layout (QE analysis moved in, b joined metrics(): same records)
    compatible_code = ("a7f24d828504eb59a4e1f088924b3465f43f5ea1c3a8e87ee0e1d663a1af2f44",)
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
        from .biper_figures import figures

        return figures(cls.name, kit)

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
