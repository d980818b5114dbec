"""Every registered binarizer's BinaryConv2d compiles as ONE graph (fullgraph=True), forward and
backward, in every stage, and the compiled layer matches the eager one.

A graph break inside a binarizer would split every binary conv of a compiled model and cost
the GPU path its fusion. The test uses backend="aot_eager": it traces forward and backward
through dynamo and AOTAutograd exactly like inductor does (graph breaks and unsupported
autograd Functions fail the same way) but skips inductor's C++ code generation, which takes
minutes on a small CPU. Run `bnnbench bench --compile` for the inductor path itself.
"""
from __future__ import annotations

import pytest
import torch

from bnnbench import BinaryConv2d, list_binarizers
from bnnbench.api import registry


def _cases():
    return [(name, stage) for name in list_binarizers() for stage in registry.get(name).stages]


@pytest.mark.parametrize("name,stage", _cases())
def test_binary_conv_compiles_fullgraph_forward_and_backward(name, stage):
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = BinaryConv2d(4, 6, 3, padding=1, binarizer=name)
    layer.binarizer.stage = stage
    layer.binarizer.progress.fill_(0.3)
    x = torch.randn(2, 4, 5, 5)
    x[0, 0, 0, :3] = torch.tensor([0.0, 1.0, -1.0])   # sign(0) and the clipping edges

    def run(fn):
        layer.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_(True)
        out = fn(xi)
        loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
        extra = layer.extra_loss()
        (loss if extra is None else loss + extra).backward()
        grads = [p.grad.clone() for p in layer.parameters() if p.grad is not None]
        return out.detach(), xi.grad, grads

    eager = run(layer)
    compiled = run(torch.compile(layer, backend="aot_eager", fullgraph=True))
    torch.testing.assert_close(compiled[0], eager[0])
    torch.testing.assert_close(compiled[1], eager[1])
    assert len(compiled[2]) == len(eager[2])
    for c, e in zip(compiled[2], eager[2]):
        torch.testing.assert_close(c, e)
