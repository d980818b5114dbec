"""BiPer's quantisation-error analysis (spec: biper, "Quantisation error"), in binarizers/biper.py.

The closed form is checked against the spec's published values, against a direct numerical
integration over the Laplace density (independent of the closed form's derivation) and against
Monte-Carlo samples through `qe_empirical`, the measure the training loop logs; BiPer's
metrics and the curves of its report figure against the same.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bnnbench import make
from bnnbench.binarizers.biper import (QE_LIMIT, l1_sign_gap, laplace_scale, qe_closed_form,
                                       qe_empirical, qe_maximum)
from bnnbench.binarizers.biper_figures import qe_curve_data


@pytest.mark.parametrize("s, qe", [(0.5, 0.088800), (1.0, 0.102794), (2.0, 0.098552)])
def test_closed_form_matches_spec_values(s, qe):
    assert round(qe_closed_form(s), 6) == qe


def test_maximum_and_limit_match_spec():
    s_star, qe_star = qe_maximum()
    assert round(qe_star, 6) == 0.102835
    assert s_star == pytest.approx(0.954882, abs=2e-6)
    assert round(QE_LIMIT, 6) == 0.094715
    assert QE_LIMIT == pytest.approx(0.5 - 4 / math.pi ** 2)
    assert qe_closed_form(1e4) == pytest.approx(QE_LIMIT, abs=1e-7)
    grid = qe_closed_form(np.linspace(0.05, 50, 5000))   # arrays in, array out; s* is the max
    assert grid.shape == (5000,) and grid.max() <= qe_star + 1e-12


@pytest.mark.parametrize("s", [0.3, 0.954882, 3.0])
def test_closed_form_equals_numerical_integral_over_laplace(s):
    """E over w ~ Laplace(0, b) of sin²(ω0 w) and |sin(ω0 w)|, with b·ω0 = s: take b = 1,
    ω0 = s, integrate the symmetric density e^{-w} on [0, 60] (the tail beyond is < 1e-26)."""
    w = np.linspace(0.0, 60.0, 600_001)
    dens = np.exp(-w)                                    # 2 · (1/2) e^{-|w|} on w ≥ 0
    sin = np.sin(s * w)
    mean_sq = np.trapezoid(sin ** 2 * dens, w)
    mean_abs = np.trapezoid(np.abs(sin) * dens, w)
    assert qe_closed_form(s) == pytest.approx(mean_sq - mean_abs ** 2, abs=1e-7)


@pytest.mark.parametrize("b, omega0", [(0.05, 10.0), (0.05, 20.0), (0.02, 30.0), (0.1, 30.0)])
def test_monte_carlo_laplace_weights_match_closed_form(b, omega0):
    g = torch.Generator().manual_seed(int(b * 1000 + omega0))
    u = torch.rand(1_000_000, generator=g, dtype=torch.float64) - 0.5
    w = -b * torch.sign(u) * torch.log1p(-2 * u.abs())          # inverse-CDF Laplace(0, b)
    assert laplace_scale(w) == pytest.approx(b, rel=5e-3)
    assert qe_empirical(w, omega0) == pytest.approx(qe_closed_form(b * omega0), abs=1.5e-3)
    # with b estimated as mean|W|, as the training loop does for a layer
    assert qe_empirical(w, omega0) == pytest.approx(
        qe_closed_form(laplace_scale(w) * omega0), abs=1.5e-3)


def test_empirical_measures_by_hand():
    # ω0 = 1: sin(w) = 1, ½, −½, 0
    w = torch.tensor([math.pi / 2, math.pi / 6, -math.pi / 6, 0.0], dtype=torch.float64)
    # QE = mean sin² − (mean |sin|)² = (1 + ¼ + ¼)/4 − (2/4)² = 0.375 − 0.25
    assert qe_empirical(w, 1.0) == pytest.approx(0.125, abs=1e-12)
    # the official script's measure: mean |sin − sign(sin)| = (0 + ½ + ½ + 0)/4
    assert l1_sign_gap(w, 1.0) == pytest.approx(0.25, abs=1e-12)
    assert laplace_scale(w) == pytest.approx((math.pi / 2 + math.pi / 3) / 4)
    assert qe_empirical(w.requires_grad_(), 1.0) == pytest.approx(0.125)   # no graph needed


@pytest.mark.parametrize("omega0", [10.0, 20.0])
def test_metrics_are_a_layers_qe_and_laplace_scale(omega0):
    """What training records per layer, against numpy on the same weights."""
    w = torch.randn(64, 32, 3, 3, generator=torch.Generator().manual_seed(1)) * 0.05
    sin = np.sin(omega0 * w.double().numpy())
    metrics = make({"name": "biper", "omega0": omega0}).metrics(w)
    assert metrics == pytest.approx({"qe": (sin ** 2).mean() - np.abs(sin).mean() ** 2,
                                     "b": np.abs(w.numpy()).mean()}, rel=1e-6)


def test_fig3_curve_peaks_where_the_paper_says():
    data = qe_curve_data()
    s_curve = data[data["curve"] == "s"]
    peak = s_curve.loc[s_curve["qe"].idxmax()]
    assert peak["qe"] == pytest.approx(0.102835, abs=1e-6)
    assert peak["s"] == pytest.approx(0.954882, abs=2e-3)
    for b, group in data[data["curve"] != "s"].groupby("b"):  # each b peaks at ω0 = s*/b
        top = group.loc[group["qe"].idxmax()]
        assert top["qe"] == pytest.approx(0.102835, abs=1e-5)
        assert top["omega0"] * b == pytest.approx(0.954882, abs=0.03)
