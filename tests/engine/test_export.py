"""bnnbench export: a run's deployable form (binary weights at 1 bit, every real tensor kept)
loads back to the run's logits bit for bit, at about 1/32 of the binary weights' fp32 size."""
import json
import math
import struct

import pytest
import torch

from bnnbench.api import layers as bnn
from bnnbench.api import registry
from bnnbench.data import load_dataset
from bnnbench.engine.evaluate import load_run
from bnnbench.engine.export import export_run, load_export, pack_sign_weight, unpack_sign_weight
from bnnbench.engine.train import train_cell
from bnnbench.errors import BnnbenchError
from bnnbench.experiment.cell import CellConfig
from bnnbench.store import records, runstore

BUILT_INS = registry.list_binarizers()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 1-epoch digits run per built-in, trained once for this module; on the labels alone
    (ReActNet distils by default), since what is exported does not depend on the loss."""
    root = tmp_path_factory.mktemp("runs")
    for name in BUILT_INS:
        cfg = CellConfig(dataset="digits", arch="resnet20", binarizer=name, epochs=1, subset=64,
                         recipe={"distill": "none"}, device="cpu")
        train_cell(cfg, root / name, progress=False, threads=1)
    return root


@pytest.mark.parametrize("binarizer", BUILT_INS)
def test_an_exported_run_gives_the_runs_logits_exactly(binarizer, runs, tmp_path):
    run = runs / binarizer
    export_run(run, tmp_path / "model.safetensors")
    original, exported = load_run(run), load_export(tmp_path / "model.safetensors")
    assert not exported.training and exported.export["stage"] == original.run["stage"]
    data = load_dataset("digits", normalize=None, subset=64)
    for x, _ in data.test_batches(128):
        x = x.contiguous(memory_format=torch.channels_last)
        assert torch.equal(original(x), exported(x))
    # the exported model no longer depends on latent weights: they now hold ±s_c (or 0) only
    for layer in bnn.binary_layers(exported):
        if layer.binarizer.binary:
            magnitudes = layer.weight.abs().flatten(1)
            assert ((magnitudes == magnitudes.amax(1, keepdim=True)) | (magnitudes == 0)).all()


# the weight scale each method's forward applies (by its paper), kept as one real per channel
@pytest.mark.parametrize("binarizer, scaled", [("xnor", True), ("reactnet", True),
                                               ("biper", False), ("sign_ste", False)])
def test_the_file_is_one_bit_per_binary_weight_plus_the_real_parts(binarizer, scaled, runs,
                                                                    tmp_path):
    path = tmp_path / "model.safetensors"
    sizes = export_run(runs / binarizer, path)
    model = load_run(runs / binarizer)
    binary = list(bnn.binary_layers(model))
    latent = {id(m.weight) for m in binary}
    packed = sum(math.ceil(m.weight.numel() / 8) for m in binary)
    real = sum(4 * p.numel() for p in model.parameters() if id(p) not in latent)
    real += sum(b.numel() * b.element_size() for b in model.buffers())
    real += sum(4 * m.out_channels for m in binary) if scaled else 0
    data = path.read_bytes()
    header = struct.unpack("<Q", data[:8])[0]   # safetensors: u64 header length, JSON, tensors
    assert len(data) == 8 + header + packed + real == sizes["file"]
    assert (sizes["binary"], sizes["real"]) == (packed, real)
    fp32_binary = sum(4 * m.weight.numel() for m in binary)
    assert packed == pytest.approx(fp32_binary / 32, rel=0.01)
    assert json.loads(json.loads(data[8:8 + header])["__metadata__"]["bnnbench"])["stage"] == \
        model.run["stage"]


def test_packing_keeps_scales_zeros_and_odd_lengths_bit_for_bit():
    scale = torch.tensor([0.5, 2.0, 3.0])
    w = torch.sign(torch.randn(3, 5, generator=torch.Generator().manual_seed(1))) * scale[:, None]
    w[1, 2] = 0.0                                   # sign(0) = 0 in PyTorch: kept as a zero
    tensors = pack_sign_weight("conv", w)
    assert tensors["conv.weight.bits"].numel() == 2  # 15 signs in 2 bytes
    assert torch.equal(tensors["conv.weight.zeros"], torch.tensor([7]))
    assert torch.equal(unpack_sign_weight("conv", [3, 5], tensors), w)
    assert set(pack_sign_weight("conv", torch.sign(w))) == {"conv.weight.bits",
                                                            "conv.weight.zeros"}


def test_a_weight_that_is_not_binary_is_refused():
    with pytest.raises(BnnbenchError, match="layer conv: .* cannot be packed to 1 bit"):
        pack_sign_weight("conv", torch.randn(4, 3))


def test_a_run_short_of_its_final_stage_is_refused(runs, tmp_path):
    """BiPer's run rewound to its first stage (real weights sin(ω0·W)) cannot be packed."""
    import shutil

    run = tmp_path / "biper"
    shutil.copytree(runs / "biper", run)
    ckpt = runstore.load_checkpoint(run / runstore.CHECKPOINT)
    ckpt["position"] = [0, 0]
    records.write_checkpoint(run, ckpt)
    with pytest.raises(BnnbenchError, match="trained only up to stage 'sine'; export needs "
                                            "its final stage 'binary'"):
        export_run(run)


def test_cli_export_prints_the_packed_size_beside_the_checkpoint(runs, tmp_path, capsys):
    from bnnbench.cli.main import main

    main(["export", str(runs / "xnor"), "-o", str(tmp_path / "x.safetensors")])
    out = capsys.readouterr().out
    size = (tmp_path / "x.safetensors").stat().st_size
    checkpoint = (runs / "xnor" / runstore.CHECKPOINT).stat().st_size
    assert f"{size / 1024:.1f} KiB" in out and f"{checkpoint / 1024:.1f} KiB" in out
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BnnbenchError, match="is not a readable bnnbench export"):
        load_export(tmp_path / "bad.safetensors")


def test_an_export_that_would_not_reproduce_the_run_is_refused_and_removed(runs, tmp_path,
                                                                             monkeypatch):
    """A fault in the loader (one weight's sign flipped) is caught by export's own check."""
    from bnnbench.engine import export

    unpack = export.unpack_sign_weight

    def one_sign_flipped(name, shape, tensors):
        w = unpack(name, shape, tensors)
        w.view(-1)[0] *= -1
        return w

    monkeypatch.setattr(export, "unpack_sign_weight", one_sign_flipped)
    with pytest.raises(BnnbenchError, match="logits differ from the run's"):
        export_run(runs / "recu", tmp_path / "model.safetensors")
    assert not (tmp_path / "model.safetensors").exists()
