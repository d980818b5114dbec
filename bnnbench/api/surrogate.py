"""Surrogate gradients declared by their formula: sign(x) forward, a stated derivative backward.

    @surrogate
    def ede(x, t, k):
        "k·t·(1 − tanh²(t·x))  (IR-Net's EDE)"
        return k * t * (1 - torch.tanh(t * x) ** 2)

    ede(x, t, k)              sign(x); backward grad · ede.derivative(x, t, k), evaluated only in
                              backward, fused into one kernel by inductor (`fused`)
    ede.composed(x, t, k)     the same function as the official codes write it: an autograd
                              Function whose backward runs the formula eagerly, op by op
    ede.derivative(x, t, k)   the formula itself

The formula is the derivative itself and autograd never differentiates it, so there is no NaN
where an antiderivative has a pole or a kink (as `straight_through(sign(x), soft(x))` gives).
Extra arguments (t, k) are tensors or numbers; they get no gradient. Inside
`composed_autograd()` every surrogate runs composed, as the official-style benchmark loop needs.
"""
from __future__ import annotations

import functools
import os
import shutil
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import Tensor

FUSE_MIN_NUMEL = 2**18

_composed = False


@contextmanager
def composed_autograd() -> Iterator[None]:
    """Inside this block the fused pieces run as the official codes compose them from eager
    torch ops and autograd: `approx_sign(x, per_sample_normalised=True)` through torch.var and
    a division, the surrogate gradients op by op. The same functions with more memory passes:
    the official-style benchmark loop runs in it, and the tests compare the two."""
    global _composed
    before, _composed = _composed, True
    try:
        yield
    finally:
        _composed = before


def is_composed() -> bool:
    """Whether the current forward runs inside `composed_autograd()`."""
    return _composed


def fused(fn):
    """`fn(x, ...)` compiled by inductor into as few kernels as it allows, for an x of at least
    FUSE_MIN_NUMEL elements; eager below that and for a forward run in `composed_autograd()`.

    The surrogate gradients are chains of elementwise ops and per-sample sums over whole
    activations: eagerly each op is one pass through memory, fused they are one or two (ReCU's
    and BiPer's activation backward on a 256×16×32×32 batch, 2-core CPU: 5.5 ms fused, 39 ms
    as eager ops). Compiled with dynamic shapes, so one compile serves every layer and batch
    size; it costs seconds per process (inductor caches its kernels on disk), which small
    activations (the digits set, unit tests) would not earn back. A CPU without a C++
    compiler, which inductor's CPU backend needs, runs `fn` eagerly."""
    has_cxx = shutil.which(os.environ.get("CXX", "g++")) is not None

    @functools.cache
    def compiled():   # on first use: importing torch's compiler stack costs seconds
        return torch.compile(fn, dynamic=True)

    @functools.wraps(fn)
    def run(x: Tensor, *args):
        if x.numel() < FUSE_MIN_NUMEL or not (x.is_cuda or has_cxx):
            return fn(x, *args)
        return compiled()(x, *args)
    return run


def for_this_forward(grad_fn):
    """The gradient function a forward hands to its backward: the eager original of a `fused`
    one inside `composed_autograd()` (decided at forward time: backward runs outside the block)."""
    return getattr(grad_fn, "__wrapped__", grad_fn) if _composed else grad_fn


class _SignWithSurrogate(torch.autograd.Function):
    """sign(x) forward; backward `surrogate_grad(x, grad, *params)`, evaluated only in backward
    (nothing extra is computed in forward or in evaluation; only x and params are kept)."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate_grad, *params: Tensor) -> Tensor:
        ctx.surrogate_grad = for_this_forward(surrogate_grad)
        ctx.save_for_backward(x, *params)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, *params = ctx.saved_tensors
        return ctx.surrogate_grad(x, grad, *params), None, *(None for _ in params)


class Surrogate:
    """sign(x) with the gradient `derivative(x, *params)`: see the module docstring."""

    def __init__(self, derivative: Callable[..., Tensor]):
        functools.update_wrapper(self, derivative)
        self.derivative = derivative

        def chain(x: Tensor, grad: Tensor, *params: Tensor) -> Tensor:
            return grad * derivative(x, *params).to(grad.dtype)
        self._eager = chain
        self._fused = fused(chain)

    def __call__(self, x: Tensor, *params) -> Tensor:
        return _SignWithSurrogate.apply(x, self._fused, *_tensors(x, params))

    def composed(self, x: Tensor, *params) -> Tensor:
        return _SignWithSurrogate.apply(x, self._eager, *_tensors(x, params))


def _tensors(x: Tensor, params) -> list[Tensor]:
    return [p if isinstance(p, Tensor) else torch.as_tensor(p, dtype=x.dtype, device=x.device)
            for p in params]


def surrogate(derivative: Callable[..., Tensor]) -> Surrogate:
    """Decorator: `derivative(x, *params)`, the surrogate's ∂sign(x)/∂x as the paper writes it,
    becomes a sign function with that gradient (fused), its `.composed` form and `.derivative`.
    A boolean formula (a clipping window) counts as 0/1."""
    return Surrogate(derivative)
