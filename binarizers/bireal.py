from bnnbench import Binarizer, approx_sign, magnitude_aware_sign, register


@register("bireal")
class BiReal(Binarizer):
    """Bi-Real Net: ApproxSign activations, magnitude-aware sign weights (spec: bireal).

    Forward   a_b = sign(a);  w_b = α_c · sign(W),  α_c = mean|W| per output channel, detached
    Backward  ∂a_b/∂a = max(0, 2 − 2|a|) (ApproxSign);  ∂w_b/∂W = 1{|W| ≤ 1} (clipped STE,
              not scaled by α, as in the official PyTorch code).
    The real-valued shortcut around every binary conv belongs to the backbone (resnet20,
    ImageNet resnet18/34 are Bi-Real style). The published ImageNet numbers came from the
    Caffe code (sign(0) = +1, real-valued pre-training); here sign(0) = 0 as in every PyTorch code.
    Paper: Liu et al., "Bi-Real Net", ECCV 2018.
    """

    paper = "Bi-Real Net (Liu et al.)"
    year = 2018
    spec = "bireal"

    def weight(self, w):
        return magnitude_aware_sign(w)

    def activation(self, x):
        return approx_sign(x)
