from bnnbench import Binarizer, channel_dims, register, sign_clipped_ste


@register("xnor")
class XNOR(Binarizer):
    """XNOR-Net: per-channel scaled sign weights, plain sign activations (spec: xnor).

    Forward   w_b = α_c · sign(W),  α_c = mean|W| over (C_in, k, k), detached
              a_b = sign(a)   (the paper's spatial scale K is dropped, as in most ports)
    Backward  clipped STE through sign: ∂w_b/∂W = α_c · 1{|W| ≤ 1};  ∂a_b/∂a = 1{|a| ≤ 1}.
    Paper: Rastegari et al., "XNOR-Net", ECCV 2016.
    """

    paper = "XNOR-Net (Rastegari et al.)"
    year = 2016
    spec = "xnor"

    def weight(self, w):
        alpha = w.abs().mean(dim=channel_dims(w), keepdim=True).detach()
        return alpha * sign_clipped_ste(w)

    def activation(self, x):
        return sign_clipped_ste(x)
