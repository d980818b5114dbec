"""The GPU path against the CPU and the formulas: run with `pytest -m cuda` on a CUDA machine
(benchmarks/gpu/check.py does, first thing on a lent GPU); skipped without CUDA.

Each built-in's forward values and gradients on CUDA equal the CPU's in fp32; bf16 autocast and
channels_last train end to end; every binary layer compiles with inductor as one graph; the
fused backward kernels on CUDA equal their formulas; a 2-epoch CIFAR-10 ResNet-20 cell trains
and resumes on the GPU. The comparison helpers are tested here on the CPU with planted
differences (unmarked tests), so a CUDA result that differs is known to fail the suite.
"""
from __future__ import annotations

import pytest
import torch

from bnnbench import BinaryConv2d, approx_sign, channel_scale, list_binarizers
from bnnbench.api import layers as bnn
from bnnbench.api import registry
from bnnbench.binarizers.irnet import ede
from bnnbench.engine.train import _CellRun, train_cell, train_step
from bnnbench.experiment.cell import CellConfig
from bnnbench.models import build_model
from bnnbench.store import runstore

FP32_TOL = dict(rtol=1e-4, atol=1e-4)   # summation order differs between devices, not values
LARGE = (4, 16, 64, 64)                 # >= FUSE_MIN_NUMEL: the fused (inductor) kernels run


@pytest.fixture
def exact_fp32():
    """fp32 convolutions and matmuls in fp32 on the GPU (TF32 off) for the comparisons."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


# --- the comparison helpers ------------------------------------------------------------------
def _cases() -> list[tuple[str, str]]:
    return [(name, stage) for name in list_binarizers() for stage in registry.get(name).stages]


def layer_results(name: str, stage: str, device: str, compile: bool = False) -> dict:
    """One BinaryConv2d of `name` in `stage`, built on the CPU with a fixed seed and moved to
    `device`: its output, input gradient and parameter gradients (on the CPU) after one
    backward of a fixed weighted sum plus the binarizer's extra loss. The input holds zeros
    and the clipping edges ±1."""
    torch.manual_seed(0)
    layer = BinaryConv2d(4, 6, 3, padding=1, binarizer=name)
    layer.binarizer.stage = stage
    layer.binarizer.progress.fill_(0.3)
    layer = layer.to(device)
    x = torch.randn(2, 4, 6, 6)
    x[0, 0, 0, :3] = torch.tensor([0.0, 1.0, -1.0])
    x = x.to(device).requires_grad_(True)
    forward = torch.compile(layer, fullgraph=True) if compile else layer
    out = forward(x)
    weights = torch.linspace(-1, 1, out.numel(), device=device).view_as(out)
    extra = layer.extra_loss()
    loss = (out * weights).sum()
    (loss if extra is None else loss + extra).backward()
    results = {"output": out, "input.grad": x.grad}
    results.update({f"{key}.grad": p.grad for key, p in layer.named_parameters()
                    if p.grad is not None})
    return {key: value.detach().cpu() for key, value in results.items()}


def assert_same_results(expected: dict, actual: dict, **tol) -> None:
    """Every tensor of `expected` in `actual`, equal within tol (default FP32_TOL); the first
    difference is named with its key."""
    assert actual.keys() == expected.keys(), f"{sorted(actual)} != {sorted(expected)}"
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, **(tol or FP32_TOL),
                                   msg=lambda m, key=key: f"{key}: {m}")


# --- the helpers themselves, on the CPU (no marker) -----------------------------------------
@pytest.mark.parametrize("name,stage", _cases())
def test_layer_results_are_reproducible_on_one_device(name, stage):
    assert_same_results(layer_results(name, stage, "cpu"), layer_results(name, stage, "cpu"),
                        rtol=0, atol=0)


def test_a_planted_forward_difference_fails_the_comparison():
    expected = layer_results("biper", "binary", "cpu")
    planted = {**expected, "output": expected["output"].clone()}
    planted["output"].view(-1)[7] += 1e-3        # one value, ten times the tolerance
    with pytest.raises(AssertionError, match="output"):
        assert_same_results(expected, planted)


def test_a_planted_surrogate_gradient_difference_fails_the_comparison(monkeypatch):
    """A backward kernel that is off by 1 % (as a wrong CUDA kernel would be) changes the
    input gradient only, and the comparison catches it there."""
    expected = layer_results("sign_ste", "binary", "cpu")
    clipped = bnn.sign_clipped_ste._fused
    monkeypatch.setattr(bnn.sign_clipped_ste, "_fused", lambda x, grad: 1.01 * clipped(x, grad))
    planted = layer_results("sign_ste", "binary", "cpu")
    torch.testing.assert_close(planted["output"], expected["output"], rtol=0, atol=0)
    with pytest.raises(AssertionError, match="input.grad"):
        assert_same_results(expected, planted)


def test_a_missing_gradient_fails_the_comparison():
    expected = layer_results("recu", "binary", "cpu")
    with pytest.raises(AssertionError):
        assert_same_results(expected, {k: v for k, v in expected.items() if k != "weight.grad"})


# --- CUDA ------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("name,stage", _cases())
@pytest.mark.usefixtures("exact_fp32")
def test_forward_and_gradients_on_cuda_equal_the_cpu(name, stage):
    assert_same_results(layer_results(name, stage, "cpu"), layer_results(name, stage, "cuda"))


@pytest.mark.cuda
@pytest.mark.parametrize("name", list_binarizers())
@pytest.mark.usefixtures("exact_fp32")
def test_a_layer_compiles_fullgraph_with_inductor_on_cuda(name):
    """inductor (not only AOTAutograd, as tests/test_compile.py on the CPU) in the binarizer's
    last stage: one graph, and the compiled layer's values and gradients are the eager ones."""
    torch._dynamo.reset()
    stage = registry.get(name).stages[-1]
    assert_same_results(layer_results(name, stage, "cuda"),
                        layer_results(name, stage, "cuda", compile=True))


@pytest.mark.cuda
@pytest.mark.parametrize("name", list_binarizers())
def test_bf16_autocast_and_channels_last_train_end_to_end(name):
    """train_step on CUDA (bf16 autocast, channels_last input) learns a fixed batch (one
    pattern per class plus noise): the loss falls, every parameter stays finite, and each
    binary conv computes in bf16 and keeps channels_last (a binarizer that made its input
    contiguous would cost the layout)."""
    torch.manual_seed(0)
    model = build_model("resnet20", name).cuda().to(memory_format=torch.channels_last)
    layouts = []
    for layer in bnn.binary_layers(model):
        layer.register_forward_hook(lambda m, i, out: layouts.append(
            (out.dtype, out.is_contiguous(memory_format=torch.channels_last))))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    y = torch.arange(64, device="cuda") % 10
    x = torch.randn(10, 3, 32, 32, device="cuda")[y] + 0.3 * torch.randn(64, 3, 32, 32,
                                                                          device="cuda")
    losses = [float(train_step(model, model, optimizer, x, y)[0]) for _ in range(30)]
    assert sum(losses[-3:]) < 0.7 * sum(losses[:3]), losses
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert layouts and set(layouts) == {(torch.bfloat16, True)}, set(layouts)


def _fused_cases():
    t, k = torch.tensor(3.0), torch.tensor(1.5)
    return {
        "clipped_ste": (bnn.sign_clipped_ste, lambda x: (x.abs() <= 1).double()),
        "approx_sign": (approx_sign, lambda x: (2 - 2 * x.abs()).clamp(min=0)),
        "ede": (lambda x: ede(x, t.to(x.device), k.to(x.device)),
                lambda x: k * t * (1 - torch.tanh(t * x) ** 2)),
    }


@pytest.mark.cuda
@pytest.mark.parametrize("case", sorted(_fused_cases()))
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fused_sign_surrogates_on_cuda_equal_their_formulas(case, layout):
    fn, derivative = _fused_cases()[case]
    torch.manual_seed(1)
    x = (torch.randn(LARGE, dtype=torch.float64) * 1.2)
    x.view(-1)[:5] = torch.tensor([0.0, 1.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    up = torch.randn(LARGE, dtype=torch.float64)
    xc = x.float().cuda().contiguous(memory_format=layout).requires_grad_(True)
    out = fn(xc)
    out.backward(up.float().cuda())
    assert torch.equal(out.detach().cpu(), torch.sign(x).float())
    torch.testing.assert_close(xc.grad.cpu().double(), up * derivative(x), rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fused_normalised_approx_sign_on_cuda_equals_autograd_of_the_composition(layout):
    """sign(x / sqrt(var(x) + eps)) per sample, ApproxSign backward through the normalisation:
    the fused CUDA kernel against autograd over the written-out composition in fp64 on the CPU."""
    torch.manual_seed(2)
    x, up = torch.randn(LARGE, dtype=torch.float64) * 2, torch.randn(LARGE, dtype=torch.float64)
    ref = x.clone().requires_grad_(True)
    s = torch.sqrt(ref.var(dim=(1, 2, 3), keepdim=True) + bnn.NORMALISE_EPS)
    a0 = ref / s
    (torch.sign(a0).detach() + (a0 - a0.detach()) * (2 - 2 * a0.detach().abs()).clamp(min=0)
     ).backward(up)
    xc = x.float().cuda().contiguous(memory_format=layout).requires_grad_(True)
    approx_sign(xc, per_sample_normalised=True).backward(up.float().cuda())
    torch.testing.assert_close(xc.grad.cpu().double(), ref.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
def test_fused_channel_scale_on_cuda_equals_its_formula():
    """α_c · y: ∂y = g · α_c and ∂α_c = Σ_{N,H,W} g · y."""
    torch.manual_seed(3)
    y, up, alpha = torch.randn(LARGE), torch.randn(LARGE), torch.rand(LARGE[1])
    yc, ac = y.cuda().requires_grad_(True), alpha.cuda().requires_grad_(True)
    channel_scale(yc, ac).backward(up.cuda())
    a = alpha.view(1, -1, 1, 1)
    torch.testing.assert_close(yc.grad.cpu(), up * a)
    torch.testing.assert_close(ac.grad.cpu().double(), (up.double() * y.double()).sum((0, 2, 3)),
                               rtol=1e-4, atol=1e-3)


@pytest.mark.cuda
def test_a_cifar10_resnet20_cell_trains_two_epochs_and_resumes_on_cuda(cifar10_root, tmp_path,
                                                                      monkeypatch):
    """Interrupted after its first epoch's checkpoint, the cell resumes there (epoch 0 is not
    trained again) and ends like the uninterrupted cell, well above chance."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    cfg = CellConfig(dataset="cifar10", arch="resnet20", binarizer="sign_ste", epochs=2,
                     data_dir=str(cifar10_root), device="cuda")
    straight = train_cell(cfg, tmp_path / "straight", progress=False)

    save = _CellRun._save_checkpoint

    def save_then_interrupt(self, optimizer):
        save(self, optimizer)
        raise KeyboardInterrupt
    monkeypatch.setattr(_CellRun, "_save_checkpoint", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_cell(cfg, tmp_path / "resumed", progress=False)
    first = runstore.read_metrics(tmp_path / "resumed" / runstore.METRICS)
    monkeypatch.setattr(_CellRun, "_save_checkpoint", save)
    resumed = train_cell(cfg, tmp_path / "resumed", progress=False)

    metrics = runstore.read_metrics(tmp_path / "resumed" / runstore.METRICS)
    assert [r["epoch"] for r in first] == [0] and [r["epoch"] for r in metrics] == [0, 1]
    assert metrics[0] == first[0]
    assert resumed["device"] == "cuda" and straight["status"] == resumed["status"] == "finished"
    assert straight["top1"] > 20 and abs(resumed["top1"] - straight["top1"]) < 3
