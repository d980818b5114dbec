from bnnbench import Binarizer, register, sign_clipped_ste


@register("sign_ste")
class SignSTE(Binarizer):
    """BNN: plain sign for weights and activations (spec: sign_ste).

    Forward   w_b = sign(W),  a_b = sign(a)      (no scale, no centring; sign(0) = 0)
    Backward  clipped STE for both: ∂/∂x = 1 where |x| ≤ 1, else 0.
    Differences from the official code: the original BNN also clipped the latent weights to
    [−1, 1] after every optimizer step (only in its older commit) and binarised the first conv
    and the classifier; bnnbench keeps first and last layers full precision like every method.
    Paper: Hubara, Courbariaux et al., "Binarized Neural Networks", NeurIPS 2016.
    """

    paper = "Binarized Neural Networks (Hubara, Courbariaux et al.)"
    year = 2016
    spec = "sign_ste"

    def weight(self, w):
        return sign_clipped_ste(w)

    def activation(self, x):
        return sign_clipped_ste(x)
