"""The device a cell trains or evaluates on, checked before anything is created."""
from __future__ import annotations

import torch

from ..errors import BnnbenchError


def resolve_device(spec: str | None) -> torch.device:
    """`spec` (cpu, cuda, cuda:N) as a torch.device, else CUDA where there is one; a
    BnnbenchError naming an unknown or absent device."""
    if not spec:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise BnnbenchError(f"unknown device '{spec}': use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise BnnbenchError(f"device '{spec}' is not supported: use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BnnbenchError(f"device '{spec}': CUDA is not available on this machine "
                            f"(torch {torch.__version__}); use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise BnnbenchError(f"device '{spec}': this machine has "
                            f"{torch.cuda.device_count()} CUDA device(s)")
    return device
