from bnnbench import Binarizer, register


@register("fp")
class FullPrecision(Binarizer):
    """Full precision: the same backbone with real weights and activations (each table's FP row).

    Forward   w ↦ w,  a ↦ a         (nothing is binarised; the block keeps its nonlinearity)
    Backward  identity
    `binary = False`: op counts and model size treat its layers as full precision (FLOPs,
    32 bits per weight), and it is matched with the published FP32 baselines. Without a recipe
    of its own it trains with the dataset's common recipe
    (bnnbench.experiment.recipe.DATASET_DEFAULTS).
    """

    paper = "full-precision reference"
    # this file in bnnbench 0.1.0 before the package layout (its docstring named a moved module)
    compatible_code = ("f59ba2cff5b0f1ca882e1adeea9256c4860048b5a86172f550ef6a6eec672e92",)
    binary = False

    def weight(self, w):
        return w

    def activation(self, x):
        return x
