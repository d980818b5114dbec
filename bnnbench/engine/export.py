"""A trained run as its deployable form: binary weights at 1 bit each, everything else real.

`export_run(run)` writes one safetensors file (a JSON header, then raw little-endian tensors;
readable from Python, Rust or C++ without bnnbench); `load_export(path)` rebuilds the model from
it, giving logits identical to `load_run(run)`'s in eval mode.

File format, version 1 ("bnnbench-export"):
  header metadata  "bnnbench": a JSON object with
      format, version       "bnnbench-export", 1
      arch, build           build_model's arch and keywords (family, in_channels, num_classes,
                            input_size)
      binarizer, stage      the binarizer's name and configuration, and the (final) stage
      plugins               the plugin files that define the binarizer (their code is needed
                            for the activation and output functions)
      input                 what the run trained on: {dataset, normalize, mean, std}; normalize
                            null (and mean, std null) is the dataset's own (digits: its
                            training split's mean and std)
      binary_layers         {layer: {"shape": weight shape, "scaled": bool, "zeros": count}}
      cell_id, source, bnnbench   where the file came from
  tensors, for each binary layer L (the weight its binarizer's forward produces in the final
  stage, eval mode: e.g. BiPer's sign(sin(ω0·W)), XNOR's α_c·sign(W)), which must be ±s_c per
  output channel c:
      L.weight.bits   uint8: the signs in row-major order of the weight shape (out, in, kh,
                      kw), 8 per byte, the first in the most significant bit (numpy.packbits);
                      1 = +s_c, 0 = −s_c; the last byte padded with 0
      L.weight.scale  float32 [out]: s_c; absent when every s_c is 1 (sign-only weights)
      L.weight.zeros  int64: flat indices of weights that are exactly 0 (sign(0) = 0 in
                      PyTorch); absent when there are none
  every other tensor of the model's state_dict under its own name and dtype: full-precision
  layers, biases, BatchNorm parameters and running statistics, and each binarizer's own state
  (ReActNet's thresholds θ, ReCU's and BiPer's scales α, schedule buffers).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..api import layers as bnn
from ..api import registry
from ..errors import BnnbenchError
from ..models import build_model
from ..store import runstore
from ..store.reader import CellRecord
from ..version import __version__

FORMAT, VERSION = "bnnbench-export", 1
DEFAULT_NAME = "export.safetensors"   # written into the run folder unless -o says otherwise


def pack_sign_weight(name: str, w: torch.Tensor) -> dict[str, torch.Tensor]:
    """The tensors of one binary layer's weight `w` (values ±s_c or 0 per output channel c)."""
    w = w.detach().float().cpu().contiguous()
    magnitude = w.abs()
    scale = magnitude.flatten(1).amax(dim=1)
    ok = (magnitude == _per_output(scale, w)) | (w == 0)
    if not bool(ok.all()):
        raise BnnbenchError(f"layer {name}: its binarizer's weight is not ±scale per output "
                            "channel, so it cannot be packed to 1 bit; export needs a binary "
                            "final stage")
    bits = np.packbits((w > 0).flatten().numpy())
    out = {f"{name}.weight.bits": torch.from_numpy(bits)}
    if not bool((scale == 1).all()):
        out[f"{name}.weight.scale"] = scale
    zeros = torch.nonzero(w.flatten() == 0).flatten()
    if zeros.numel():
        out[f"{name}.weight.zeros"] = zeros
    return out


def unpack_sign_weight(name: str, shape: list[int],
                       tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """The weight `pack_sign_weight` packed, bit for bit."""
    numel = int(np.prod(shape))
    bits = np.unpackbits(tensors[f"{name}.weight.bits"].numpy(), count=numel)
    w = torch.from_numpy(bits.astype(np.float32) * 2.0 - 1.0).view(shape)
    if f"{name}.weight.scale" in tensors:
        w = w * _per_output(tensors[f"{name}.weight.scale"], w)
    if f"{name}.weight.zeros" in tensors:
        w.view(-1)[tensors[f"{name}.weight.zeros"]] = 0.0
    return w


def _per_output(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A per-output-channel vector shaped to broadcast over dim 0 of the weight `w`."""
    return v.view(-1, *([1] * (w.dim() - 1)))


def binary_weight_layers(model: torch.nn.Module) -> dict[str, bnn.BinaryLayer]:
    """The layers whose weights are packed: binary layers of a binary binarizer (`fp`'s stay
    real)."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, bnn.BinaryLayer) and m.binarizer.binary}


@torch.no_grad()
def pack_model(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """(tensors, binary_layers) of the file for `model`, in eval mode and its final stage."""
    layers = binary_weight_layers(model)
    tensors: dict[str, torch.Tensor] = {}
    described = {}
    for name, layer in layers.items():
        packed = pack_sign_weight(name, layer.binarizer.weight(layer.weight))
        tensors.update(packed)
        zeros = packed.get(f"{name}.weight.zeros")
        described[name] = {"shape": list(layer.weight.shape),
                           "scaled": f"{name}.weight.scale" in packed,
                           "zeros": 0 if zeros is None else zeros.numel()}
    latent = {f"{name}.weight" for name in layers}
    for key, value in model.state_dict().items():
        if key not in latent and isinstance(value, torch.Tensor):   # not extra state: see load
            tensors[key] = value.detach().cpu().contiguous()
    return tensors, described


def export_run(run: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Write the deployable form of the run folder `run` to `out` (default
    RUN/export.safetensors) and check that it loads back to identical logits. Returns the
    path and the sizes in bytes: file, binary weights packed, real parts, fp32 weights (every
    parameter and buffer at 32 bits) and the fp32 checkpoint file."""
    from .evaluate import load_record

    run = Path(run)
    record = CellRecord(run)
    model = load_record(record)
    stages = registry.get(model.run["binarizer"]["name"]).stages
    if model.run["stage"] != stages[-1]:
        raise BnnbenchError(f"{run} has trained only up to stage '{model.run['stage']}'; export "
                            f"needs its final stage '{stages[-1]}': let the run finish first")
    tensors, layers = pack_model(model)
    header = _header(model, layers, record.config)
    out = Path(out) if out is not None else run / DEFAULT_NAME
    data = safetensors_bytes(tensors, metadata={"bnnbench": json.dumps(header)})
    runstore.write_bytes(out, data)
    try:
        _check_identical(model, load_export(out))
    except BnnbenchError:
        out.unlink()   # never leave a file that does not reproduce the run
        raise
    bits = sum(t.numel() for k, t in tensors.items() if k.endswith(".weight.bits"))
    return {"path": out, "file": len(data), "binary": bits,
            "real": sum(t.numel() * t.element_size() for t in tensors.values()) - bits,
            "fp32": 4 * sum(t.numel() for t in [*model.parameters(), *model.buffers()]),
            "checkpoint": (run / runstore.CHECKPOINT).stat().st_size}


def _header(model: torch.nn.Module, layers: dict[str, dict], config: dict) -> dict[str, Any]:
    from ..data.augment import NORMALIZE

    normalize = config["stages"][0]["recipe"]["normalize"]
    mean, std = NORMALIZE.get(normalize, (None, None))
    return {"format": FORMAT, "version": VERSION, "arch": model.arch,
            "build": model.run["build"],
            "binarizer": model.run["binarizer"], "stage": model.run["stage"],
            "plugins": model.run["cell"].get("plugins", []),
            "input": {"dataset": model.run["cell"]["dataset"], "normalize": normalize,
                      "mean": mean, "std": std},
            "binary_layers": layers, "cell_id": model.run["cell_id"],
            "source": model.run["path"], "bnnbench": __version__}


@torch.no_grad()
def _check_identical(model: torch.nn.Module, exported: torch.nn.Module) -> None:
    """The exported model must give the run's logits bit for bit (a batch of random images)."""
    x = torch.randn(8, *model.input_shape, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    if not torch.equal(model(x), exported(x)):
        raise BnnbenchError("the exported model's logits differ from the run's: please report "
                            "this as a bnnbench bug (binarizer "
                            f"'{model.run['binarizer']['name']}')")


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of an export file, checked to be one."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = json.loads((fh.metadata() or {}).get("bnnbench", "{}"))
    except (OSError, SafetensorError, ValueError) as exc:
        raise BnnbenchError(f"{path} is not a readable bnnbench export "
                            f"({type(exc).__name__}: {str(exc)[:100]})") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise BnnbenchError(f"{path} is not a {FORMAT} file of version {VERSION}: export the "
                            "run again with this bnnbench")
    return header


def load_export(path: str | Path, *, device: str | None = "cpu") -> torch.nn.Module:
    """The model an export file holds, in eval mode on `device`, its binary layers using the
    unpacked weights as they are: logits identical to `load_run` of the exported run.
    `model.export` holds the file's header."""
    from .device import resolve_device

    header = read_header(path)
    registry.load_plugins(header["plugins"])
    tensors = load_file(str(path))
    model = build_model(header["arch"], header["binarizer"], **header["build"])
    bnn.set_stage(model, header["stage"])
    layers = binary_weight_layers(model)
    if set(layers) != set(header["binary_layers"]):
        raise BnnbenchError(f"{path} does not match {header['arch']}'s binary layers: export "
                            "the run again with this bnnbench")
    packed = {f"{name}.weight.{part}" for name in layers for part in ("bits", "scale", "zeros")}
    state = {k: v for k, v in tensors.items() if k not in packed}
    # not in the file: the latent weights, and non-tensor extra state (a binarizer's stage:
    # set from the header above)
    untensored = {k for k, v in model.state_dict().items() if not isinstance(v, torch.Tensor)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - untensored != {f"{name}.weight" for name in layers} or unexpected:
        raise BnnbenchError(f"{path} does not match {header['arch']} (missing "
                            f"{sorted(set(missing))[:3]}, unexpected {unexpected[:3]})")
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight.copy_(unpack_sign_weight(name, header["binary_layers"][name]["shape"],
                                                  tensors))
            layer.binarizer.weight = _already_binary
    model.export = header
    return model.to(resolve_device(device), memory_format=torch.channels_last).eval()


def _already_binary(w: torch.Tensor) -> torch.Tensor:
    """An exported binary layer's weight function: its weight is the binarizer's output
    already (an instance attribute in place of the method; activation and output stay the
    binarizer's own)."""
    return w
