"""A third-party binarizer with a quantity of its own and a figure of it, written only against
names `bnnbench` exports (issue #20 item 5's check)."""
from bnnbench import Binarizer, register, sign_clipped_ste


@register("sign_balance")
class SignBalance(Binarizer):
    """sign with the clipped STE for weights and activations; records the share of negative
    latent weights and draws it against the final top-1."""

    paper = "Sign balance (a test plugin)"
    year = 2026

    def weight(self, w):
        return sign_clipped_ste(w)

    def activation(self, x):
        return sign_clipped_ste(x)

    def metrics(self, w):
        return {"negative": (w < 0).float().mean().item()}

    @classmethod
    def report_figures(cls, kit):
        mine = kit.cells[kit.cells["binarizer"] == cls.name].dropna(subset=["binarizer/negative"])
        fig = kit.new_figure(kit.max_width_in / 2, 3.0)
        ax = fig.subplots()
        ax.scatter(mine["binarizer/negative"], mine["top1"])
        ax.set_xlabel("share of negative latent weights")
        ax.set_ylabel("test top-1 (%)")
        yield "sign_balance_negative", fig
