"""bnnbench: a benchmark suite for the binarizers of Binary Neural Networks.

The public plugin API: subclass `Binarizer`, decorate with `register`, declare a surrogate
gradient with `surrogate` or compose the pieces below.
"""
from .distill import register_distill_loss
from .errors import BnnbenchError
from .nn import (BinaryConv2d, BinaryLinear, approx_sign, channel_dims, channel_scale,
                 channel_view, clamp_inclusive, magnitude_aware_sign,
                 per_sample_variance_normalise, sign_clipped_ste, sign_identity_ste,
                 straight_through)
from .surrogate import Surrogate, composed_autograd, fused, surrogate
from .registry import Binarizer, get, list_binarizers, load_plugins, make, register, resolve

__version__ = "0.1.0"

# what a notebook needs, one name each, imported on first use (they pull in data, models, Ray)
_LAZY = {"build_model": "models", "train_cell": "train", "load_run": "runs",
         "evaluate_run": "runs", "run_grid": "tune", "leaderboard": "report",
         "load_export": "export"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'bnnbench' has no attribute '{name}'")

__all__ = [
    *_LAZY, "Binarizer", "BinaryConv2d", "BinaryLinear", "BnnbenchError", "Surrogate",
    "approx_sign", "channel_dims", "channel_scale", "channel_view", "clamp_inclusive",
    "composed_autograd", "fused", "get", "list_binarizers", "load_plugins",
    "magnitude_aware_sign", "make", "per_sample_variance_normalise", "register",
    "register_distill_loss", "resolve",
    "sign_clipped_ste", "sign_identity_ste", "straight_through", "surrogate",
]
