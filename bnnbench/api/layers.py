"""Binary layers that delegate to a binarizer, and the autograd pieces binarizers compose.

A sign with a surrogate gradient is declared by its derivative (`bnnbench.api.surrogate`): the
built-in `sign_clipped_ste` and `approx_sign` are, and so is IR-Net's EDE. Their gradients are
computed only in backward, fused by inductor; inside `composed_autograd()` they run op by op.
`straight_through(hard, soft)` is the general piece: forward exactly `hard`, the gradient of
`soft` (autograd runs `soft` op by op; prefer `surrogate` for a sign). Clipping windows are inclusive (|x| ≤ 1), as in the official codes: see `clamp_inclusive`.
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import BnnbenchError
from . import registry
from .surrogate import for_this_forward, fused, is_composed, surrogate


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hard: Tensor, soft: Tensor) -> Tensor:
        return hard

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, grad


def straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Forward `hard` exactly, backward the gradient of `soft`."""
    return _StraightThrough.apply(hard.detach(), soft)


def clamp_inclusive(x: Tensor, lo, hi) -> Tensor:
    """clamp(x, lo, hi) with gradient 1 on the closed window lo ≤ x ≤ hi, 0 outside.

    The official codes relied on torch.clamp's old subgradient, 1 at the edges; recent torch
    gives 0 there (scalar bounds) or 1/2 (tensor bounds), so the window is written out here."""
    inside = ((x >= lo) & (x <= hi)).to(x.dtype)
    return straight_through(torch.clamp(x, lo, hi), x * inside)


def sign_identity_ste(x: Tensor) -> Tensor:
    """sign(x); gradient 1 everywhere (identity STE)."""
    return straight_through(torch.sign(x), x)


NORMALISE_EPS = 1e-5     # ReCU's and BiPer's per-sample sqrt(var + eps), fused and composed


@surrogate
def sign_clipped_ste(x: Tensor) -> Tensor:
    """sign(x); gradient 1 where |x| ≤ 1 (inclusive), else 0 (clipped STE)."""
    return x.abs() <= 1.0


@surrogate
def _approx_sign(x: Tensor) -> Tensor:
    """max(0, 2 − 2|x|)"""
    return torch.clamp(2.0 - 2.0 * x.abs(), min=0.0)


def approx_sign(x: Tensor, *, per_sample_normalised: bool = False) -> Tensor:
    """sign(x); gradient max(0, 2 − 2|x|) (Bi-Real's ApproxSign).

    per_sample_normalised=True: sign(a0) with the ApproxSign gradient on
    a0 = x / sqrt(var_{C,H,W}(x) + 1e-5) per sample, flowing on through the normalisation, the
    same function as `approx_sign(per_sample_variance_normalise(x, True))` computed in one step
    (ReCU, BiPer in training)."""
    if per_sample_normalised and is_composed():
        return _approx_sign(per_sample_variance_normalise(x, True))
    if per_sample_normalised:
        return _NormalisedApproxSign.apply(x, NORMALISE_EPS)
    return _approx_sign(x)


class _ChannelScale(torch.autograd.Function):
    """y · α_c over dim 1; backward ∂y = g · α_c and ∂α_c = Σ_{N,H,W} g · y in one fused pass."""

    @staticmethod
    def forward(ctx, y: Tensor, alpha: Tensor) -> Tensor:
        ctx.scale_grad = for_this_forward(_channel_scale_grad)
        ctx.save_for_backward(y, alpha)
        return y * channel_view(alpha, y)

    @staticmethod
    def backward(ctx, grad: Tensor):
        y, alpha = ctx.saved_tensors
        return ctx.scale_grad(grad, y, alpha)


@fused
def _channel_scale_grad(grad: Tensor, y: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
    dims = (0, *range(2, y.dim()))
    return ((grad * channel_view(alpha, y)).to(y.dtype),
            (grad * y).sum(dim=dims).to(alpha.dtype))


def channel_scale(y: Tensor, alpha: Tensor) -> Tensor:
    """α_c · y for a per-channel vector α (dim 1 of y): a learnable output scale (ReCU, BiPer)."""
    return _ChannelScale.apply(y, alpha)


def magnitude_aware_sign(w: Tensor) -> Tensor:
    """α_c·sign(W) with α_c = mean|W| per output channel (detached); gradient 1{|W| ≤ 1}
    (Bi-Real's weight binarizer, reused by ReActNet)."""
    alpha = w.abs().mean(dim=channel_dims(w), keepdim=True).detach()
    return straight_through(alpha * torch.sign(w), clamp_inclusive(w, -1.0, 1.0))


def channel_view(v: Tensor, like: Tensor) -> Tensor:
    """Reshape a per-channel vector to broadcast over dim 1 of `like` (N, C, ...)."""
    return v.view(1, -1, *([1] * (like.dim() - 2)))


def channel_dims(w: Tensor) -> tuple[int, ...]:
    """The dims to reduce for a per-output-channel statistic of a weight: all but dim 0."""
    return tuple(range(1, w.dim()))


def per_sample_variance_normalise(x: Tensor, training: bool,
                                  eps: float = NORMALISE_EPS) -> Tensor:
    """x / sqrt(var(x) + eps) per sample over (C, H, W) in training, x itself in eval (ReCU).

    Written as the official codes write it (torch.var, then a division). The built-ins take
    `approx_sign(x, per_sample_normalised=True)` instead, which fuses this into the sign; this
    composed form is what that runs inside `composed_autograd()`."""
    if not training:
        return x
    return x / torch.sqrt(x.var(dim=tuple(range(1, x.dim())), keepdim=True) + eps)


@fused
def _normalised_approx_sign_grad(x: Tensor, grad: Tensor, eps: float) -> Tensor:
    """∂L/∂x of sign(a0), a0 = x / s, s = sqrt(var(x) + eps), for x and grad as (samples, n):
        g0 = grad · max(0, 2 − 2|a0|)
        ∂L/∂x_j = g0_j / s − (Σ_i g0_i x_i) · (x_j − mean x) / ((n − 1) s³)
    (statistics in at least fp32, from the sums of x and x²)."""
    acc = torch.promote_types(x.dtype, torch.float32)
    xf, n = x.to(acc), x.shape[1]
    mean = xf.sum(dim=1, keepdim=True) / n
    var = ((xf * xf).sum(dim=1, keepdim=True) - n * mean * mean) / (n - 1)
    inv_s = torch.rsqrt(var + eps)
    g0 = grad.to(acc) * torch.clamp(2.0 - 2.0 * xf.abs() * inv_s, min=0.0)
    c = (g0 * xf).sum(dim=1, keepdim=True) * inv_s ** 3 / (n - 1)
    return (g0 * inv_s - c * (xf - mean)).to(x.dtype)


class _NormalisedApproxSign(torch.autograd.Function):
    """sign(a0) with a0 = x / sqrt(var(x) + eps) per sample, ApproxSign backward on a0 and then
    through the normalisation (variance not detached), in one function.

    sign(a0) = sign(x) since the scale is positive, so forward is a single sign and keeps only
    x; the variance, a0 and both chain-rule steps are evaluated in backward only, fused
    (`_normalised_approx_sign_grad`). This is the gradient autograd takes through
    `approx_sign(per_sample_variance_normalise(x))`; tests/test_binarizers.py checks both
    against the hand-derived formula."""

    @staticmethod
    def forward(ctx, x: Tensor, eps: float) -> Tensor:
        ctx.eps = eps
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        # one row per sample, in x's memory order (a view for NCHW and channels_last alike)
        order, inverse = _memory_order(x)
        rows = x.permute(order).shape
        dx = _normalised_approx_sign_grad(x.permute(order).reshape(x.shape[0], -1),
                                          grad.permute(order).reshape(x.shape[0], -1), ctx.eps)
        return dx.view(rows).permute(inverse), None


def _memory_order(x: Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The permutation of x's dims (batch first) that lists its elements in memory order, and
    its inverse: NHWC for a channels_last batch, the identity otherwise."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last):
        return (0, 2, 3, 1), (0, 3, 1, 2)
    identity = tuple(range(x.dim()))
    return identity, identity


class BinaryLayer:
    """Mixin for layers whose weights and inputs go through `self.binarizer`."""

    binarizer: registry.Binarizer

    def _attach(self, binarizer: Any) -> None:
        self.binarizer = registry.make(binarizer)
        self.binarizer.build(self)
        with torch.no_grad():
            self.binarizer.init_weight(self.weight)

    def extra_loss(self) -> Tensor | None:
        return self.binarizer.loss(self.weight)


class BinaryConv2d(nn.Conv2d, BinaryLayer):
    """Conv2d on binary inputs with binary weights: output(conv(activation(x), weight(W)))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = False, *, binarizer: Any):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self._attach(binarizer)

    def forward(self, x: Tensor) -> Tensor:
        b = self.binarizer
        return b.output(self._conv_forward(b.activation(x), b.weight(self.weight), self.bias))


class BinaryLinear(nn.Linear, BinaryLayer):
    """Linear on binary inputs with binary weights."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *,
                 binarizer: Any):
        super().__init__(in_features, out_features, bias=bias)
        self._attach(binarizer)

    @property
    def in_channels(self) -> int:
        return self.in_features

    @property
    def out_channels(self) -> int:
        return self.out_features

    def forward(self, x: Tensor) -> Tensor:
        b = self.binarizer
        return b.output(F.linear(b.activation(x), b.weight(self.weight), self.bias))


def initialise(model: nn.Module, init_fn, *, linear: bool = True) -> None:
    """Apply `init_fn` to every conv weight (and linear weight unless `linear` is False: those
    keep PyTorch's default), then let each binarizer re-initialise its own layer's weight (so a
    model-wide init never overrides a method's prescribed one)."""
    kinds = (nn.Conv2d, nn.Linear) if linear else (nn.Conv2d,)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, kinds):
                init_fn(m.weight)
            if isinstance(m, BinaryLayer):
                m.binarizer.init_weight(m.weight)


def binary_layers(model: nn.Module) -> Iterator[BinaryLayer]:
    return (m for m in model.modules() if isinstance(m, BinaryLayer))


def set_progress(model: nn.Module, p: float) -> None:
    """Tell every binarizer the training progress p = epoch / epochs (in place: no recompile)."""
    for layer in binary_layers(model):
        layer.binarizer.progress.fill_(p)


def set_binarizer_params(model: nn.Module, params: dict[str, Any]) -> None:
    """Give every binarizer of `model` these parameter values (a stage's recipe values)."""
    for layer in binary_layers(model):
        for key, value in params.items():
            setattr(layer.binarizer, key, value)


def set_stage(model: nn.Module, stage: str) -> None:
    for layer in binary_layers(model):
        if stage not in layer.binarizer.stages:
            raise BnnbenchError(f"binarizer '{layer.binarizer.name}' has no stage '{stage}' "
                                f"(stages: {', '.join(layer.binarizer.stages)})")
        layer.binarizer.stage = stage


def extra_loss(model: nn.Module) -> Tensor | None:
    """Sum of the binarizers' extra loss terms over the binary layers (None if none has one)."""
    terms = [t for t in (layer.extra_loss() for layer in binary_layers(model)) if t is not None]
    return sum(terms) if terms else None
