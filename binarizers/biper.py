import torch
from torch import nn

from bnnbench import Binarizer, approx_sign, channel_scale, register, sign_identity_ste
from bnnbench.analysis import qe_empirical


@register("biper")
class BiPer(Binarizer):
    """BiPer: binary periodic weights, a square wave with its sine as surrogate (spec: biper).

    Forward   stage "sine":   ŵ = sin(ω0·W)            (real-valued weights)
              stage "binary": w_b = sign(sin(ω0·W))
              a_b = sign(a0),  a0 = a / sqrt(var_{C,H,W} a + 1e-5) per sample in training (as ReCU)
              y = α_c · conv(a_b, w_b),  α learnable per output channel, init U[0, 1)
    Backward  weights: identity STE through sign, so ∂w_b/∂W = ω0·cos(ω0·W) (no clipping window);
              activations: ApproxSign on a0.
    Extra loss  τ · mean(sin²(ω0·W)) per layer (CIFAR code; τ = 0.037 stage 1, 0.0468 stage 2).
    ω0 is fixed, the same in both stages; stage 2 starts from all of stage 1's tensors.
    CIFAR-10 stage 2 is the official loop's: epochs 1..299 of a 300-epoch schedule
    (`start_epoch = 1`, so its warm-up starts at 0.4·lr). The official stage 2 starts from stage
    1's epoch of best *test* accuracy; bnnbench starts from the final one, since choosing on the
    test set is questionable (`init_from = "best"` in the binary stage's recipe gives the
    official choice, and reports flag such cells).
    Paper: Vargas et al., "BiPer: Binary Neural Networks using a Periodic Function", CVPR 2024.
    """

    paper = "BiPer (Vargas et al.)"
    year = 2024
    spec = "biper"
    stages = ("sine", "binary")
    omega0: float = 20.0
    reg_tau: float = 0.037
    recipes = {
        "cifar10": {
            "sine": dict(epochs=600, batch_size=256, lr=0.021, weight_decay=0.0016,
                         warmup_epochs=5, normalize="imagenet", binarizer={"reg_tau": 0.037}),
            "binary": dict(epochs=299, start_epoch=1, batch_size=256, lr=0.0037,
                           weight_decay=0.00016, warmup_epochs=5, normalize="imagenet",
                           binarizer={"reg_tau": 0.0468}),
        },
        # ImageNet: no regulariser; decay only on conv/fc weights and α (not BN, not downsample)
        "imagenet": {
            "sine": dict(epochs=200, batch_size=512, lr=0.1, weight_decay=1e-4, decay="conv_fc",
                         warmup_epochs=5, binarizer={"reg_tau": 0.0}),
            "binary": dict(epochs=100, batch_size=512, lr=0.01, weight_decay=1e-4,
                           decay="conv_fc", warmup_epochs=0, binarizer={"reg_tau": 0.0}),
        },
    }

    def build(self, layer):
        self.alpha = nn.Parameter(torch.rand(layer.out_channels))

    def weight(self, w):
        w_hat = torch.sin(self.omega0 * w)
        return w_hat if self.stage == "sine" else sign_identity_ste(w_hat)

    def activation(self, x):
        return approx_sign(x, per_sample_normalised=self.training)

    def output(self, y):
        return channel_scale(y, self.alpha)

    def metrics(self, w):
        return {"qe": qe_empirical(w, self.omega0)}   # the paper's quantisation error

    def loss(self, w):
        if self.reg_tau == 0.0:
            return None
        return self.reg_tau * torch.sin(self.omega0 * w).pow(2).mean()
