import math

import torch

from bnnbench import Binarizer, channel_dims, register, surrogate


@surrogate
def ede(x, t, k):
    """EDE: sign(x) forward, ∂/∂x = k·t·(1 − tanh²(t·x)), the derivative of k·tanh(t·x)."""
    return k * t * (1.0 - torch.tanh(t * x) ** 2)


@register("irnet")
class IRNet(Binarizer):
    """IR-Net: Libra-PB weights and the EDE surrogate (spec: irnet).

    Forward   ŵ = (W − mean_c W) / std_c W   (per output channel, unbiased std, not detached)
              w_b = s_c · sign(ŵ),  s_c = 2^round(log2(mean_c |ŵ|))  (detached)
              a_b = sign(a)
    Backward  EDE for weights and activations: ∂/∂x = k·t·(1 − tanh²(t·x)), with
              t = 10^(log10 T_min + p·(log10 T_max − log10 T_min)),  k = max(1/t, 1),
              p = epoch / epochs (so t starts at T_min and never quite reaches T_max).
    T_min = 0.1 (paper and VGG-Small code); the ResNet-20 code used 1e-3 (its recipe sets it).
    Paper: Qin et al., "Forward and Backward Information Retention (IR-Net)", CVPR 2020.
    """

    paper = "IR-Net (Qin et al.)"
    year = 2020
    spec = "irnet"
    t_min: float = 0.1
    t_max: float = 10.0
    recipes = {
        "cifar10": {"binary": dict(epochs=400, batch_size=128, lr=0.1, weight_decay=1e-4,
                                   warmup_epochs=0, binarizer={"t_min": 1e-3})},
        # merged over "cifar10": the VGG-Small code's schedule and its T_min = 0.1
        "cifar10/vgg_small": {"binary": dict(epochs=300, lr=0.007, binarizer={"t_min": 0.1})},
    }

    @classmethod
    def validate(cls, config):
        if not 0.0 < config["t_min"] <= config["t_max"]:
            raise ValueError(f"needs 0 < t_min <= t_max, got t_min={config['t_min']}, "
                             f"t_max={config['t_max']}")

    def schedule(self):
        lo, hi = math.log10(self.t_min), math.log10(self.t_max)
        t = torch.pow(10.0, lo + self.progress * (hi - lo))
        return {"t": t, "k": torch.clamp(1.0 / t, min=1.0)}

    def ede_sign(self, x):
        s = self.schedule()
        return ede(x, s["t"], s["k"])

    def weight(self, w):
        dims = channel_dims(w)
        w_hat = (w - w.mean(dim=dims, keepdim=True)) / w.std(dim=dims, keepdim=True)
        s = torch.pow(2.0, torch.round(torch.log2(w_hat.abs().mean(dim=dims, keepdim=True))))
        return s.detach() * self.ede_sign(w_hat)

    def activation(self, x):
        return self.ede_sign(x)
