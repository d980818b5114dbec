"""BiPer's quantisation-error (QE) analysis (spec: biper, "Quantisation error").

For Laplace(0, b) weights and ŵ = sin(ω0·w), the QE of the best scaled binarisation α·sign(ŵ),
min_α E[(ŵ − α·sign ŵ)²] = E[ŵ²] − (E|ŵ|)², depends on s = b·ω0 only.
"""
from __future__ import annotations

import math

import numpy as np
import torch


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
    from scipy.optimize import minimize_scalar  # here: BiPer's metrics import this module
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
