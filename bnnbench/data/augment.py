"""Batched augmentation and normalisation on the device: no per-image Python work.

Random crop with zero padding and horizontal flip, as in the official CIFAR codes
(torchvision RandomCrop(32, padding=4) + RandomHorizontalFlip on the raw image, then Normalize),
done for a whole batch by one `gather` over the flattened padded batch. The flip is
folded into the column index, so crop and flip together cost one gather.

All randomness is drawn up front from the caller's torch.Generator (`draw_crop_flip`) and only
then moved to the data's device, so an epoch is the same on CPU and GPU given the generator.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import BnnbenchError

# Per-channel (mean, std) of the named normalisations, in [0, 1] pixel units.
NORMALIZE = {
    "cifar": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),     # CIFAR-10 train set
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),        # ImageNet train set
}


def norm_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of a named normalisation."""
    if name not in NORMALIZE:
        raise BnnbenchError(f"unknown normalize {name!r}; known: {', '.join(sorted(NORMALIZE))}")
    return NORMALIZE[name]


def draw_crop_flip(n: int, pad: int, generator: torch.Generator, flip: bool = True):
    """Per-image crop offsets dy, dx in [0, 2*pad] and flip flags, on the generator's device."""
    dev = generator.device
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    fl = (torch.randint(0, 2, (n,), generator=generator, device=dev).bool() if flip
          else torch.zeros(n, dtype=torch.bool, device=dev))
    return dy, dx, fl


def crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor,
              pad: int) -> torch.Tensor:
    """Image b of the result = zero-pad x[b] by `pad`, crop at (dy[b], dx[b]), mirror if flip[b].

    x: (B, C, H, W) of any dtype; dy, dx, flip: (B,) on x's device. Zero padding happens in
    the stored pixel units (black for uint8 images), before normalisation, as the official codes do.
    """
    b, c, h, w = x.shape
    wp = w + 2 * pad
    padded = F.pad(x, (pad, pad, pad, pad)).flatten(2)                          # (B, C, Hp*Wp)
    rows = dy[:, None] + torch.arange(h, device=x.device)                       # (B, H)
    cols = torch.arange(w, device=x.device)
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - cols, cols)         # (B, W)
    # One flat index per output pixel, shared by the channels (expand is a view, not a copy).
    flat = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.gather(2, flat).view(b, c, h, w)


class Normalizer:
    """x -> (x * unit - mean) / std, one fused multiply-add per element, in float32."""

    def __init__(self, mean, std, unit: float, device):
        self.mean, self.std = tuple(map(float, mean)), tuple(map(float, std))
        mean = torch.tensor(self.mean, dtype=torch.float32)
        std = torch.tensor(self.std, dtype=torch.float32)
        # Stored pixels are in `unit`s (1/255 for uint8 images); fold that into the scale.
        self.scale = (unit / std).view(1, -1, 1, 1).to(device)
        self.shift = (-mean / std).view(1, -1, 1, 1).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x.float(), self.scale)
