"""The built-in binarizers against the spec (spec/binarizers.md), value by value.

Every expected forward value and gradient below is written out by hand or computed from the
spec's formulas in numpy (`_ref_*`), never by calling the code under test. The inputs contain
zeros and values on both sides of every clipping edge (EDGE). The second half is generated from
the registry, so every registered binarizer (a new plugin too) gets the layer, serialisation,
stage and state-dict checks for free.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import math
from functools import partial

import numpy as np
import pytest
import torch

from bnnbench import (BinaryConv2d, BinaryLinear, BnnbenchError, approx_sign, channel_scale,
                      clamp_inclusive, get, list_binarizers, make, sign_clipped_ste)
from bnnbench.api.layers import extra_loss, set_progress, set_stage
from bnnbench.api.surrogate import FUSE_MIN_NUMEL, composed_autograd
from bnnbench.models import build_model

EDGE = [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
SIGN_EDGE = [-1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 1.0]          # sign(0) = 0
APPROX_SIGN_GRAD = [0.0, 0.0, 1.0, 2.0, 1.0, 0.0, 0.0]      # the spec's ApproxSign table
CLIPPED_GRAD = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]          # 1 where |x| <= 1 (inclusive)
UPSTREAM = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]              # a non-uniform incoming gradient


def t(values, *shape) -> torch.Tensor:
    x = torch.tensor(values, dtype=torch.float64)
    return x.view(*shape) if shape else x


def value_and_grad(fn, x: torch.Tensor, upstream: torch.Tensor | None = None):
    """fn(x) and d(sum(upstream · fn(x)))/dx."""
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    y.backward(torch.ones_like(y) if upstream is None else upstream)
    return y.detach(), x.grad


def close(actual, expected, atol=1e-9):
    expected = torch.as_tensor(np.asarray(expected), dtype=actual.dtype).reshape(actual.shape)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=1e-7)


def fresh(name, **config):
    return make({"name": name, **config}).double()


# --- independent references (numpy, from the spec's formulas) ------------------------------------
def _ref_standardise_backward(w, u, scale, ddof_var_eps=None):
    """Gradient w.r.t. w (one channel, flat) of sum(u · scale·(w − mean w)/σ), σ the unbiased
    std (or sqrt(unbiased var + eps) when eps is given), with mean and σ NOT detached:
    dL/dw_j = scale·[(u_j − mean u)/σ − (w_j − m)·Σ_i u_i (w_i − m) / ((n−1)σ³)]."""
    n, m = w.size, w.mean()
    c = w - m
    var = (c ** 2).sum() / (n - 1)
    sigma = math.sqrt(var + (ddof_var_eps or 0.0))
    return scale * ((u - u.mean()) / sigma - c * (u * c).sum() / ((n - 1) * sigma ** 3))


def _ref_variance_normalise(a, eps=1e-5):
    """a0 = a / sqrt(var(a) + eps) for one sample (flat, unbiased var, no centring)."""
    return a / math.sqrt(a.var(ddof=1) + eps)


def _ref_variance_normalise_backward(a, u, eps=1e-5):
    """Gradient w.r.t. a of sum(u · a / s), s = sqrt(var(a) + eps), var not detached:
    dL/da_j = u_j/s − (Σ_i u_i a_i)·(a_j − mean a) / ((n−1) s³)."""
    n = a.size
    s = math.sqrt(a.var(ddof=1) + eps)
    return u / s - (u * a).sum() * (a - a.mean()) / ((n - 1) * s ** 3)


def _ref_approx_sign_grad(x):
    return np.maximum(0.0, 2.0 - 2.0 * np.abs(x))


# --- the shared surrogate pieces -----------------------------------------------------------------
@pytest.mark.parametrize("bound", [1.0, torch.tensor(1.0, dtype=torch.float64)])
def test_clipping_windows_are_inclusive_for_scalar_and_tensor_bounds(bound):
    """The official codes relied on torch.clamp's old subgradient (1 at the edges); recent torch
    gives 0 (scalar bounds) or 1/2 (tensor bounds, ReCU's Q_τ) there."""
    y, g = value_and_grad(lambda x: clamp_inclusive(x, -bound, bound), t(EDGE))
    close(y, [-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0])
    close(g, CLIPPED_GRAD)


# --- sign_ste (BNN) ------------------------------------------------------------------------------
def test_sign_ste_weights_and_activations_are_clipped_ste():
    b = fresh("sign_ste")
    for fn in (b.weight, b.activation):
        y, g = value_and_grad(fn, t(EDGE))
        close(y, SIGN_EDGE)
        close(g, CLIPPED_GRAD)


# --- xnor ----------------------------------------------------------------------------------------
def test_xnor_weight_is_per_channel_mean_abs_times_sign_with_alpha_scaled_clipped_ste():
    w = t(EDGE + [2 * v for v in EDGE], 2, 1, 1, 7)       # channel 1 = 2·EDGE
    b = fresh("xnor")
    y, g = value_and_grad(b.weight, w)
    a0, a1 = 6 / 7, 12 / 7                                 # mean|EDGE| = 6/7, mean|2·EDGE| = 12/7
    close(y, [a0 * s for s in SIGN_EDGE] + [a1 * s for s in SIGN_EDGE])
    # α detached, clipped STE through sign: dw_b/dW = α_c · 1{|W| <= 1}
    close(g, [a0 * m for m in CLIPPED_GRAD] + [a1 * m for m in [0, 0, 1, 1, 1, 0, 0]])


def test_xnor_activation_is_plain_sign_with_clipped_ste():
    y, g = value_and_grad(fresh("xnor").activation, t(EDGE, 1, 1, 1, 7))
    close(y, SIGN_EDGE)
    close(g, CLIPPED_GRAD)


# --- bireal --------------------------------------------------------------------------------------
def test_bireal_activation_is_approx_sign_table():
    y, g = value_and_grad(fresh("bireal").activation, t(EDGE, 1, 1, 1, 7))
    close(y, SIGN_EDGE)
    close(g, APPROX_SIGN_GRAD)


def test_bireal_weight_scale_per_channel_and_unscaled_clipped_ste():
    w = t(EDGE + [0.5 * v for v in EDGE], 2, 7)              # a linear-layer weight
    y, g = value_and_grad(fresh("bireal").weight, w)
    close(y, [6 / 7 * s for s in SIGN_EDGE] + [3 / 7 * s for s in SIGN_EDGE])
    close(g, CLIPPED_GRAD + [1.0] * 7)                      # not scaled by α (official code)


# --- reactnet ------------------------------------------------------------------------------------
def test_reactnet_rsign_threshold_shifts_sign_and_learns_through_approx_sign():
    b = make("reactnet")
    b.build(BinaryConv2d(2, 1, 1, binarizer="sign_ste"))    # θ sized by in_channels = 2
    b.double()
    assert b.theta.shape == (2,) and torch.all(b.theta == 0)
    with torch.no_grad():
        b.theta.copy_(torch.tensor([0.0, 0.5]))
    x = t(EDGE + EDGE, 1, 2, 1, 7)
    g_up = t(UPSTREAM + UPSTREAM, 1, 2, 1, 7)
    y, g = value_and_grad(b.activation, x, g_up)
    close(y, SIGN_EDGE + [-1, -1, -1, -1, 0, 1, 1])         # sign(x − θ), sign(0) = 0
    grad1 = [0, 0, 0, 1, 2, 1, 0]                           # ApproxSign at EDGE − 0.5
    close(g, [u * d for u, d in zip(UPSTREAM, APPROX_SIGN_GRAD)]
          + [u * d for u, d in zip(UPSTREAM, grad1)])
    # dL/dθ_c = −Σ upstream · ApproxSign'(x − θ_c)
    close(b.theta.grad, [-(3 * 1 + 4 * 2 + 5 * 1), -(4 * 1 + 5 * 2 + 6 * 1)])


def test_reactnet_weights_per_stage_and_init():
    w = t(EDGE + [0.5 * v for v in EDGE], 2, 1, 7, 1)
    b = fresh("reactnet")
    assert b.stage == "binary" and b.stages == ("real_weights", "binary")
    y, g = value_and_grad(b.weight, w)
    close(y, [6 / 7 * s for s in SIGN_EDGE] + [3 / 7 * s for s in SIGN_EDGE])
    close(g, CLIPPED_GRAD + [1.0] * 7)
    b.stage = "real_weights"                                # step 1: real weights, binary acts
    y, g = value_and_grad(b.weight, w)
    close(y, w)
    close(g, [1.0] * 14)
    conv = BinaryConv2d(8, 16, 3, binarizer="reactnet")     # latent weights U[0, 0.001)
    assert conv.weight.min() >= 0 and conv.weight.max() < 1e-3
    assert conv.weight.std() > 1e-5                         # random, not constant


# --- irnet ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("t_min, p, t_exp, k_exp", [
    (0.1, 0.0, 0.1, 10.0), (0.1, 0.5, 1.0, 1.0), (0.1, 1.0, 10.0, 1.0),
    (1e-3, 0.0, 1e-3, 1000.0), (1e-3, 0.5, 0.1, 10.0), (1e-3, 1.0, 10.0, 1.0)])
def test_irnet_ede_schedule_and_activation_gradient(t_min, p, t_exp, k_exp):
    b = fresh("irnet", t_min=t_min)
    b.progress.fill_(p)
    tt, kk = b.schedule()["t"], b.schedule()["k"]
    assert tt.item() == pytest.approx(t_exp, rel=1e-6)
    assert kk.item() == pytest.approx(k_exp, rel=1e-6)
    y, g = value_and_grad(b.activation, t(EDGE))
    close(y, SIGN_EDGE)
    close(g, [k_exp * t_exp * (1 - math.tanh(t_exp * x) ** 2) for x in EDGE], atol=1e-6)


def test_irnet_initial_ede_is_unit_gradient_at_zero():
    b = fresh("irnet")                                      # p = 0: t = 0.1, k = 10
    _, g = value_and_grad(b.activation, t([0.0]))
    close(g, [1.0])


def _ref_irnet_weight(w, p, t_min, upstream):
    """Libra-PB + EDE from the spec, per output channel (rows of a 2-D array)."""
    tt = 10 ** (math.log10(t_min) + p * (1 - math.log10(t_min)))       # T_max = 10
    k = max(1 / tt, 1.0)
    out, grad = np.zeros_like(w), np.zeros_like(w)
    for c in range(w.shape[0]):
        m, sd = w[c].mean(), w[c].std(ddof=1)
        w_hat = (w[c] - m) / sd
        s = 2.0 ** np.round(np.log2(np.abs(w_hat).mean()))
        out[c] = s * np.sign(w_hat)
        u = upstream[c] * s * k * tt * (1 - np.tanh(tt * w_hat) ** 2)   # dL/dŵ, s detached
        grad[c] = _ref_standardise_backward(w[c], u, 1.0)
    return out, grad


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_irnet_libra_pb_weight_values_and_gradient_through_statistics(p):
    # channel 0: mean|ŵ| ≈ 0.62 → s = 2^-1; channel 1 contains an exact zero after centring
    w = np.array([[0, 0, 0, 0, 0, 0, 0, 10.0],
                  [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 0.0]])
    up = np.arange(1.0, 17.0).reshape(2, 8)
    b = fresh("irnet")
    b.progress.fill_(p)
    y, g = value_and_grad(b.weight, t(w, 2, 8), t(up, 2, 8))
    ref_y, ref_g = _ref_irnet_weight(w, p, 0.1, up)
    assert ref_y[0, 0] == -0.5 and ref_y[1, 3] == 0.0
    close(y, ref_y)
    close(g, ref_g, atol=1e-7)


# --- recu ----------------------------------------------------------------------------------------
def _spec_tau(epoch, epochs, tau_min=0.85, tau_max=0.99):
    a = (tau_max - tau_min) / (math.e - 1)
    return a * math.exp(epoch / epochs) + tau_min - a


def test_recu_tau_schedule_ends():
    b = fresh("recu")
    assert b.schedule()["tau"].item() == pytest.approx(0.85, abs=1e-7)
    b.progress.fill_(599 / 600)
    assert round(b.schedule()["tau"].item(), 6) == 0.989631
    assert _spec_tau(599, 600) == pytest.approx(0.989631, abs=5e-7)
    b.progress.fill_(1.0)
    assert b.schedule()["tau"].item() == pytest.approx(0.99, abs=1e-9)


def _ref_recu_weight(w, tau, upstream):
    """ReCU's weight path from the spec; w is (C_out, n). Returns (w_b, dL/dW, inside-mask)."""
    c = 2 * math.sqrt(2)
    w1 = np.zeros_like(w)
    for ch in range(w.shape[0]):
        w0 = w[ch] - w[ch].mean()
        w1[ch] = w0 / (math.sqrt(w0.var(ddof=1) + 1e-5) / c)
    q = -np.abs(w1).mean() * math.log(2 - 2 * tau)               # whole layer, a plain number
    inside = np.abs(w1) <= q
    grad = np.zeros_like(w)
    for ch in range(w.shape[0]):
        u = upstream[ch] * inside[ch]                            # identity STE, clamp window
        grad[ch] = _ref_standardise_backward(w[ch], u, c, ddof_var_eps=1e-5)
    return np.sign(w1), grad, inside


@pytest.mark.parametrize("epoch", [0, 300, 599])
def test_recu_weight_clamp_window_and_gradient_through_statistics(epoch):
    rng = np.random.default_rng(epoch)
    w = rng.normal(0, 0.1, size=(4, 18))
    up = rng.normal(size=w.shape)
    b = fresh("recu")
    b.progress.fill_(epoch / 600)
    y, g = value_and_grad(b.weight, t(w, 4, 2, 3, 3), t(up, 4, 2, 3, 3))
    ref_y, ref_g, inside = _ref_recu_weight(w, _spec_tau(epoch, 600), up)
    close(y, ref_y)
    close(g, ref_g, atol=1e-8)
    if epoch == 0:                                 # τ = 0.85: some weights lie outside the window
        assert (~inside).any()
        # ... and still get a gradient, through the (not detached) channel mean and variance
        assert (g.view(4, 18)[torch.from_numpy(~inside)].abs() > 1e-6).all()


def test_recu_activation_train_normalises_per_sample_and_eval_does_not():
    b = fresh("recu")
    rng = np.random.default_rng(0)
    a = rng.normal(0, 2, size=(2, 3, 2, 2))
    a[0, 0, 0, 0] = 0.0
    up = rng.normal(size=a.shape)
    y, g = value_and_grad(b.activation, t(a, *a.shape), t(up, *a.shape))
    close(y, np.sign(a))
    assert y[0, 0, 0, 0] == 0
    ref_g = np.zeros_like(a)
    for n in range(2):
        an = a[n].ravel()
        u = up[n].ravel() * _ref_approx_sign_grad(_ref_variance_normalise(an))
        ref_g[n] = _ref_variance_normalise_backward(an, u).reshape(a[n].shape)
    close(g, ref_g, atol=1e-8)
    b.eval()                                                # eval: a0 = a, ApproxSign table
    y, g = value_and_grad(b.activation, t(EDGE, 1, 1, 1, 7))
    close(y, SIGN_EDGE)
    close(g, APPROX_SIGN_GRAD)


def _ref_conv_grad_alpha(x, w_b, upstream):
    """dL/dα for y = α_c · conv(x, w_b) (x, w_b already binary): Σ upstream·conv over (N, H, W)."""
    y = torch.nn.functional.conv2d(x, w_b, padding=1)
    return (y * upstream).sum(dim=(0, 2, 3))


@pytest.mark.parametrize("name", ["recu", "biper"])
def test_output_scale_alpha_is_learnable_per_channel(name):
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 4, 3, padding=1, binarizer=name).double()
    alpha = conv.binarizer.alpha
    assert alpha.shape == (4,) and alpha.requires_grad
    assert 0 <= alpha.min() and alpha.max() < 1                 # U[0, 1)
    conv.eval()                                                  # a0 = a: inputs are just sign(x)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    x[:, :, 0, 0] = 0.0
    up = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    y = conv(x)
    y.backward(up)
    w = conv.weight.detach()
    if name == "recu":
        w_b = torch.sign(w - w.mean(dim=(1, 2, 3), keepdim=True))
    else:
        w_b = torch.sign(torch.sin(20.0 * w))
    raw = torch.nn.functional.conv2d(torch.sign(x), w_b, padding=1)
    close(y.detach(), raw * alpha.detach().view(1, -1, 1, 1))
    close(alpha.grad, _ref_conv_grad_alpha(torch.sign(x), w_b, up), atol=1e-9)


# --- biper ---------------------------------------------------------------------------------------
BIPER_W = [0.0, 0.01, -0.03, 0.05, -0.0785, 0.1, 0.2, -0.3]


@pytest.mark.parametrize("omega0", [20.0, 30.0])
def test_biper_weight_stages_sine_and_square_wave(omega0):
    w = np.array(BIPER_W)
    b = fresh("biper", omega0=omega0)
    assert b.stages == ("sine", "binary") and b.stage == "binary"
    y, g = value_and_grad(b.weight, t(w))
    close(y, np.sign(np.sin(omega0 * w)))                     # sign(sin(0)) = 0
    assert y[0] == 0
    close(g, omega0 * np.cos(omega0 * w))                     # no clipping window, amplitude ω0
    b.stage = "sine"
    y, g = value_and_grad(b.weight, t(w))
    close(y, np.sin(omega0 * w))                               # real-valued, not binary
    close(g, omega0 * np.cos(omega0 * w))


def test_biper_sin2_loss_and_its_gradient():
    w = np.array(BIPER_W)
    b = fresh("biper", reg_tau=0.0468)
    val, g = value_and_grad(b.loss, t(w))
    close(val, 0.0468 * np.mean(np.sin(20 * w) ** 2))
    close(g, 0.0468 * 20 * np.sin(40 * w) / w.size)           # d sin²(ωw)/dw = ω·sin(2ωw)
    assert fresh("biper", reg_tau=0.0).loss(t(w)) is None


def test_biper_activation_matches_recu_activation_reference():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.5, size=(1, 2, 3, 3))
    a[0, 1, 1, 1] = 0.0
    up = rng.normal(size=a.shape)
    y, g = value_and_grad(fresh("biper").activation, t(a, *a.shape), t(up, *a.shape))
    close(y, np.sign(a))
    an = a.ravel()
    u = up.ravel() * _ref_approx_sign_grad(_ref_variance_normalise(an))
    close(g, _ref_variance_normalise_backward(an, u), atol=1e-8)


LARGE = (4, 16, 64, 64)      # FUSE_MIN_NUMEL elements: the compiled (inductor) path


@pytest.mark.parametrize("shape, layout", [((3, 4, 5, 5), torch.contiguous_format),
                                           ((3, 4, 5, 5), torch.channels_last),
                                           ((3, 7), torch.contiguous_format),
                                           (LARGE, torch.contiguous_format),
                                           (LARGE, torch.channels_last)])
def test_fused_normalised_approx_sign_equals_the_official_composition(shape, layout):
    """The built-ins' one-step `approx_sign(x, per_sample_normalised=True)` against the official
    codes' composition (torch.var, a division, sign with ApproxSign backward) through autograd,
    which `composed_autograd()` switches to: same forward bit for bit, same gradient, eager
    (small x) and compiled (large x)."""
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64) * 2
    x.view(-1)[::5] = 0.0                                   # sign(0) = 0 in both
    x = x.contiguous(memory_format=layout)
    up = torch.randn(shape, dtype=torch.float64)
    fn = partial(approx_sign, per_sample_normalised=True)
    y, g = value_and_grad(fn, x, up)
    with composed_autograd():
        x_ref = x.detach().clone().requires_grad_(True)
        y_ref = fn(x_ref)
        y_ref.backward(up)
    assert type(y_ref.grad_fn).__name__ != type(fn(x.requires_grad_()).grad_fn).__name__
    assert torch.equal(y, y_ref.detach())
    torch.testing.assert_close(g, x_ref.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("surrogate, derivative", [
    (sign_clipped_ste, lambda x: (np.abs(x) <= 1.0).astype(float)),
    (approx_sign, _ref_approx_sign_grad),
    (lambda x: importlib.import_module(get("irnet").__module__).ede(x, 3.0, 1.0),
     lambda x: 3.0 * (1.0 - np.tanh(3.0 * x) ** 2)),
], ids=["clipped_ste", "approx_sign", "ede"])
def test_fused_sign_surrogates_on_large_activations(surrogate, derivative):
    """Above FUSE_MIN_NUMEL the surrogate gradients run compiled: still upstream · d(x)."""
    assert np.prod(LARGE) >= FUSE_MIN_NUMEL
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, size=LARGE)
    x.reshape(-1)[:7] = EDGE
    up = rng.normal(size=LARGE)
    y, g = value_and_grad(surrogate, t(x, *LARGE), t(up, *LARGE))
    close(y, np.sign(x))
    close(g, up * derivative(x), atol=1e-12)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_channel_scale_gradients_on_large_activations(layout):
    """α_c · y (ReCU/BiPer's output scale), compiled above FUSE_MIN_NUMEL: ∂y = g·α_c and
    ∂α_c = Σ_{N,H,W} g·y, in NCHW and channels_last."""
    rng = np.random.default_rng(3)
    y_np, up, alpha_np = rng.normal(size=LARGE), rng.normal(size=LARGE), rng.uniform(size=16)
    y = t(y_np, *LARGE).contiguous(memory_format=layout).requires_grad_(True)
    alpha = t(alpha_np).requires_grad_(True)
    out = channel_scale(y, alpha)
    out.backward(t(up, *LARGE))
    a = alpha_np.reshape(1, -1, 1, 1)
    close(out.detach(), y_np * a)
    close(y.grad, up * a, atol=1e-12)
    close(alpha.grad, (up * y_np).sum(axis=(0, 2, 3)), atol=1e-9)


@pytest.mark.parametrize("composed", [False, True])
def test_composed_autograd_is_decided_at_forward(composed):
    """A forward run inside composed_autograd() keeps its backward eager even when backward runs
    after the block (as in the official-style benchmark loop); otherwise a large activation's
    surrogate gradients run compiled."""
    from torch.profiler import profile

    x = torch.randn(LARGE, requires_grad=True)
    alpha = torch.rand(16, requires_grad=True)
    with composed_autograd() if composed else contextlib.nullcontext():
        y = channel_scale(sign_clipped_ste(x), alpha)
    with profile() as prof:
        y.sum().backward()
    compiled = [e.key for e in prof.key_averages() if "Compiled" in e.key]
    assert bool(compiled) != composed, compiled


@pytest.mark.parametrize("name", list_binarizers())
def test_model_gradients_are_those_of_the_official_composition(name):
    """Every parameter gradient of a whole ResNet-20 step, the engine's fused surrogates against
    the same step inside `composed_autograd` (eager ops, ReCU/BiPer's torch.var)."""
    torch.manual_seed(0)
    model = build_model("resnet20", name, input_size=8).double().train()
    x, y = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 3])

    def grads():
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        return [p.grad.clone() for p in model.parameters()]
    fused = grads()
    with composed_autograd():
        composed = grads()
    for a, b in zip(fused, composed):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_biper_extra_loss_sums_over_layers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(BinaryConv2d(2, 3, 3, binarizer="biper"),
                                BinaryConv2d(3, 3, 3, binarizer={"name": "biper", "reg_tau": 0.5}))
    expected = sum(tau * torch.sin(20 * m.weight).pow(2).mean().item()
                   for tau, m in zip((0.037, 0.5), model))
    assert extra_loss(model).item() == pytest.approx(expected, rel=1e-6)
    assert extra_loss(torch.nn.Sequential(BinaryConv2d(2, 3, 3, binarizer="xnor"))) is None


# --- generated from the registry: every registered binarizer -------------------------------------
NAMES = list_binarizers()
BINARY = [n for n in NAMES if get(n).binary]   # all but full-precision references such as fp


def _input(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    x.view(-1)[::7] = 0.0                                        # zeros ...
    x.view(-1)[1::7] = 1.0                                       # ... and clipping edges
    x.view(-1)[2::7] = -1.0
    return x


def _layers(name):
    torch.manual_seed(0)
    return [BinaryConv2d(3, 4, 3, padding=1, binarizer=name),
            BinaryLinear(6, 5, binarizer=name)]


def _forward_backward(layer, training=True):
    layer.train(training)
    shape = (2, 3, 5, 5) if isinstance(layer, BinaryConv2d) else (4, 6)
    x = _input(shape).requires_grad_(True)
    y = layer(x)
    loss = y.square().sum()
    extra = layer.extra_loss()
    if extra is not None:
        loss = loss + extra
    loss.backward()
    return x, y


def test_builtins_are_registered():
    assert {"sign_ste", "xnor", "bireal", "irnet", "reactnet", "recu", "biper"} <= set(NAMES)
    assert NAMES == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_layers_forward_backward_every_stage(name):
    for stage in get(name).stages:
        for layer in _layers(name):
            set_stage(layer, stage)
            x, y = _forward_backward(layer)
            out_features = layer.out_channels
            assert y.shape[:2] == (x.shape[0], out_features)
            assert torch.isfinite(y).all()
            assert x.grad is not None and torch.isfinite(x.grad).all()
            for pname, p in layer.named_parameters():
                assert p.grad is not None, f"{name}/{stage}: {pname} got no gradient"
                assert torch.isfinite(p.grad).all()
            assert layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_eval_mode_and_every_progress(name):
    for layer in _layers(name):
        for p in (0.0, 1.0):
            set_progress(layer, p)
            assert layer.binarizer.progress.item() == pytest.approx(p)
            for training in (True, False):
                _, y = _forward_backward(layer, training)
                assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", BINARY)
def test_sign_of_zero_is_zero_and_outputs_are_binary(name):
    b = make(name)
    x = torch.tensor([[[[-2.0, -0.3, 0.0, 0.3, 2.0]]]])
    b.build(BinaryConv2d(1, 3, 1, binarizer="sign_ste"))        # per-layer state, if any
    a = b.activation(x)
    assert a[0, 0, 0, 2] == 0
    assert set(a.unique().tolist()) <= {-1.0, 0.0, 1.0}
    w = torch.randn(3, 2, 3, 3)
    w_b = b.weight(w)
    per_channel = w_b.abs().flatten(1)
    # the last stage is fully binary: one magnitude per output channel (0 only for sign(0))
    for row in per_channel:
        assert torch.unique(row[row > 0]).numel() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_config_json_round_trip(name):
    b = make(name)
    spec = json.loads(json.dumps({"name": name, **b.config()}))
    again = make(spec)
    assert type(again) is type(b) and again.config() == b.config()
    assert again is not b and make(b) is not b                  # one fresh instance per layer


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_reproduces_outputs(name):
    torch.manual_seed(0)
    a = BinaryConv2d(3, 4, 3, padding=1, binarizer=name)
    set_progress(a, 0.5)
    torch.manual_seed(1)
    b = BinaryConv2d(3, 4, 3, padding=1, binarizer=name)
    b.load_state_dict(a.state_dict())                           # strict: every tensor carries over
    x = _input((2, 3, 5, 5))
    a.eval(), b.eval()
    torch.testing.assert_close(a(x), b(x))
    assert b.binarizer.progress.item() == 0.5


@pytest.mark.parametrize("name", NAMES)
def test_metadata_and_unknown_stage(name):
    cls = get(name)
    assert cls.name == name and cls.__doc__ and cls.stages
    assert cls.nonlinearity in ("hardtanh", "rprelu", "identity")
    for recipe in cls.recipes.values():
        assert set(recipe) <= set(cls.stages)
    layer = BinaryLinear(3, 2, binarizer=name)
    with pytest.raises(BnnbenchError, match="no stage"):
        set_stage(layer, "no_such_stage")


def test_fp_is_the_identity_and_counted_as_full_precision():
    b = make("fp")
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert torch.equal(b.activation(x), x) and torch.equal(b.weight(x), x)
    from bnnbench.models import complexity
    fp, xnor = (complexity(build_model("resnet20", n)) for n in ("fp", "xnor"))
    assert fp["bops"] == 0 and fp["flops"] == xnor["bops"] + xnor["flops"]
    assert fp["binary_params"] == 0 and fp["size_bits"] == 32 * fp["params"]
