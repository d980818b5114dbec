import torch
from torch import nn

from bnnbench import Binarizer, approx_sign, channel_view, magnitude_aware_sign, register


@register("reactnet")
class ReActNet(Binarizer):
    """ReActNet: RSign activations with a learnable per-channel threshold (spec: reactnet).

    Forward   a_b = sign(a − θ_c), θ learnable per input channel, init 0   (RSign)
              w_b = α_c · sign(W), α_c = mean|W| per output channel, detached
    Backward  ∂a_b/∂a = max(0, 2 − 2|a − θ|) (ApproxSign on the shifted input; θ learns
              through it);  ∂w_b/∂W = 1{|W| ≤ 1} (clipped STE).
    Latent weights start U[0, 0.001). The block's RPReLU is the backbone's nonlinearity
    (`nonlinearity = "rprelu"`). Two steps: "real_weights" (binary activations, real weights)
    then "binary", the second from the first's weights (every tensor carried over).
    Loss (both steps): the distributional loss KL(p_teacher ‖ p_student) against a
    full-precision teacher instead of the labels (bnnbench.api.distill.distribution). Teacher as in
    the official recipe on ImageNet: an fp ResNet-34 (ours, trained by the grid); elsewhere
    (CIFAR-10, digits) the fp model of the student's own arch.
    Paper: Liu et al., "ReActNet", ECCV 2020.
    """

    paper = "ReActNet (Liu et al.)"
    # this file in bnnbench 0.1.0 before the package layout (its docstring named a moved module)
    compatible_code = ("45b94d34a75981fce394fd60aa7d8cec119e7f36c71c5d11da7a07b1dafa43cc",)
    year = 2020
    spec = "reactnet"
    stages = ("real_weights", "binary")
    nonlinearity = "rprelu"
    recipes = {
        "default": {stage: dict(distill="distribution") for stage in ("real_weights", "binary")},
        # Adam, weight decay on conv weights only, lr decays linearly to 0 (LambdaLR 1 − e/E)
        "imagenet": {
            "real_weights": dict(epochs=128, batch_size=512, optimizer="adam", lr=2.5e-3,
                                 weight_decay=1e-5, decay="conv", schedule="linear",
                                 teacher={"arch": "resnet34"}),
            "binary": dict(epochs=128, batch_size=512, optimizer="adam", lr=2.5e-3,
                           weight_decay=0.0, decay="conv", schedule="linear",
                           teacher={"arch": "resnet34"}),
        },
    }

    def build(self, layer):
        self.theta = nn.Parameter(torch.zeros(layer.in_channels))

    def init_weight(self, w):
        nn.init.uniform_(w, 0.0, 1e-3)

    def weight(self, w):
        if self.stage == "real_weights":
            return w
        return magnitude_aware_sign(w)

    def activation(self, x):
        return approx_sign(x - channel_view(self.theta, x))
