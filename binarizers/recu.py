import math

import torch
from torch import nn

from bnnbench import (Binarizer, approx_sign, channel_dims, channel_scale, clamp_inclusive,
                      register, sign_identity_ste)


@register("recu")
class ReCU(Binarizer):
    """ReCU: standardised weights, rectified by a clamp that widens over training (spec: recu).

    Forward   w0 = W − mean_c W;  w1 = w0 / (sqrt(var_c w0 + 1e-5) / (2√2))
              Q_τ = −mean|w1| · ln(2 − 2τ)   (whole layer, detached)
              w_b = sign(clamp(w1, −Q_τ, Q_τ))
              a_b = sign(a0),  a0 = a / sqrt(var_{C,H,W} a + 1e-5) per sample in training, a in eval
              y = α_c · conv(a_b, w_b),  α learnable per output channel, init U[0, 1)
    Backward  weights: identity through sign, 1 inside [−Q_τ, Q_τ] through the clamp, then through
              the (not detached) centring and scaling;  activations: ApproxSign on a0.
    τ = A·exp(p) + B over p = epoch/epochs, A = (τ_max − τ_min)/(e − 1), B = τ_min − A.
    Paper: Xu et al., "ReCU: Reviving the Dead Weights in Binary Neural Networks", ICCV 2021.
    """

    paper = "ReCU (Xu et al.)"
    year = 2021
    spec = "recu"
    tau_min: float = 0.85
    tau_max: float = 0.99
    recipes = {
        "cifar10": {"binary": dict(epochs=600, batch_size=256, lr=0.1, weight_decay=5e-4,
                                   warmup_epochs=5)},
    }

    def build(self, layer):
        self.alpha = nn.Parameter(torch.rand(layer.out_channels))

    @classmethod
    def validate(cls, config):
        if not 0.0 <= config["tau_min"] <= config["tau_max"] < 1.0:
            raise ValueError(f"needs 0 <= tau_min <= tau_max < 1 (Q_τ = −mean|w|·ln(2 − 2τ)), "
                             f"got tau_min={config['tau_min']}, tau_max={config['tau_max']}")

    def schedule(self):
        a = (self.tau_max - self.tau_min) / (math.e - 1.0)
        return {"tau": a * torch.exp(self.progress) + (self.tau_min - a)}

    def weight(self, w):
        dims = channel_dims(w)
        w0 = w - w.mean(dim=dims, keepdim=True)
        w1 = w0 / (torch.sqrt(w0.var(dim=dims, keepdim=True) + 1e-5) / (2 * math.sqrt(2)))
        q = (-w1.abs().mean() * torch.log(2 - 2 * self.schedule()["tau"])).detach()
        return sign_identity_ste(clamp_inclusive(w1, -q, q))

    def activation(self, x):
        return approx_sign(x, per_sample_normalised=self.training)

    def output(self, y):
        return channel_scale(y, self.alpha)
