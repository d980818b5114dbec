"""A third-party binarizer written only against names `bnnbench` exports (issue 14's check)."""
import math

from bnnbench import Binarizer, register, surrogate


@surrogate
def atan_sign(x, a):
    """sign(x) forward; backward (2a/π) / (1 + (a·x)²), the derivative of (2/π)·atan(a·x)."""
    return 2 * a / math.pi / (1 + (a * x) ** 2)


@register("atan_anneal")
class AtanAnneal(Binarizer):
    """sign for weights and activations, the arctan surrogate's slope annealed per step:
    a = a_min · (a_max / a_min)^p."""

    paper = "Arctan annealing (a test plugin)"
    year = 2026
    layout = "conv_act_bn"
    progress_per_step = True
    published = (dict(top1=42.5, dataset="digits", arch="resnet20", source="Tab. 1 of the test"),)
    a_min: float = 1.0
    a_max: float = 10.0

    @classmethod
    def validate(cls, config):
        if not 0 < config["a_min"] <= config["a_max"]:
            raise ValueError("needs 0 < a_min <= a_max")

    def schedule(self):
        return {"a": self.a_min * (self.a_max / self.a_min) ** self.progress}

    def weight(self, w):
        return atan_sign(w, self.schedule()["a"])

    def activation(self, x):
        return atan_sign(x, self.schedule()["a"])
