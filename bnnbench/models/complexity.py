"""Operation and memory counts of a model, measured by one forward pass with hooks.

BNN papers count a binary multiply-add (a BOP: XNOR + popcount) as 1/64 of a full-precision
one, so OPs = BOPs/64 + FLOPs, where "FLOPs" is the multiply-adds of the full-precision conv and
linear layers (as those papers and torchvision count them; BN, pooling and additions are left
out). Model size: 1 bit per binary weight, 32 bits per every other parameter (incl. binarizer
state such as ReCU's α). Running the model, rather than deriving counts from the arch, makes the
numbers follow whatever the builder really produced.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..api.layers import BinaryLayer


def _macs(module: nn.Module, output: Tensor) -> int:
    """Multiply-adds of one conv/linear call, per image (the forward uses a batch of 1)."""
    if isinstance(module, nn.Conv2d):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() * per_output
    return output.numel() * module.in_features


def _is_binary(module: nn.Module) -> bool:
    """A layer whose weights and activations are binary (not one of a full-precision `fp`)."""
    return isinstance(module, BinaryLayer) and module.binarizer.binary


def layer_table(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> list[dict]:
    """One row per conv/linear layer in forward order, for one image of `input_shape` (C, H, W;
    default `model.input_shape`): name, kind, bits (weights/activations: "1/1" or "32/32"),
    output shape, binary_params (its binary weights), real_params (every other parameter of
    the layer, its binarizer's state such as ReCU's α included), bops and flops. The model's
    train/eval state is restored; works on a meta-device model too (no compute)."""
    shape = tuple(input_shape if input_shape is not None else model.input_shape)
    names = {module: name for name, module in model.named_modules()}
    rows: list[dict] = []

    def hook(module: nn.Module, inputs, output: Tensor) -> None:
        binary = _is_binary(module)
        params = sum(p.numel() for p in module.parameters())
        rows.append({"layer": names[module], "kind": type(module).__name__,
                     "bits": "1/1" if binary else "32/32", "output": tuple(output.shape[1:]),
                     "binary_params": module.weight.numel() if binary else 0,
                     "real_params": params - (module.weight.numel() if binary else 0),
                     "bops": _macs(module, output) if binary else 0,
                     "flops": 0 if binary else _macs(module, output)})

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    first = next(model.parameters())
    was_training = model.training
    model.eval()  # batch of one: BatchNorm1d cannot use batch statistics
    try:
        with torch.no_grad():
            model(torch.zeros((1, *shape), device=first.device, dtype=first.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


def complexity(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> dict[str, int | float]:
    """Counts for one image of `input_shape` (C, H, W); default `model.input_shape`: the sums
    of `layer_table` and the model's parameters.

    Returns bops, flops, ops (= bops/64 + flops), fp_equivalent_macs (= bops + flops, what the
    model would cost in full precision), params, binary_params (binary weights) and size_bits.
    """
    rows = layer_table(model, input_shape)
    params = sum(p.numel() for p in model.parameters())
    binary_params = sum(r["binary_params"] for r in rows)
    bops, flops = sum(r["bops"] for r in rows), sum(r["flops"] for r in rows)
    return {
        "bops": bops,
        "flops": flops,
        "ops": bops / 64 + flops,
        "fp_equivalent_macs": bops + flops,
        "params": params,
        "binary_params": binary_params,
        "size_bits": binary_params + 32 * (params - binary_params),
    }
