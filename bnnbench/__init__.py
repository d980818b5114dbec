"""bnnbench: a benchmark suite for the binarizers of Binary Neural Networks.

The public plugin API: subclass `Binarizer`, decorate with `register`, declare a surrogate
gradient with `surrogate` or compose the pieces below; add a backbone with `register_arch`, a
dataset with `register_dataset` (often an `InMemoryDataset`), a distillation loss with
`register_distill_loss`.

Sub-packages, one concept each; a module imports only from its own sub-package and from the
layers below it (tests/test_layers.py counts it).
Layers, lowest first: errors, version < api < data, models < experiment < store < engine < report
< schedule < bench < cli

  api         Binarizer, surrogate gradients, binary layers, the registries
  data        datasets (on-device CIFAR-10, ImageFolder, digits)
  models      backbones built from (arch, binarizer), op counts
  experiment  a cell, its resolved recipes and teachers, grid files: pure, no run-store I/O
  store       the run store: atomic files, locks, checkpoints, records, its one reader
  engine      training, evaluation, export of one cell
  report      run stores into leaderboards, tables and figures
  schedule    grids on Ray Tune: driver, trial, cluster, progress, tracking
  bench       the training-speed benchmark
  cli         the `bnnbench` command
"""
from .api.distill import register_distill_loss
from .api.layers import (BinaryConv2d, BinaryLinear, approx_sign, channel_dims, channel_scale,
                         channel_view, clamp_inclusive, magnitude_aware_sign,
                         per_sample_variance_normalise, sign_clipped_ste, sign_identity_ste,
                         straight_through)
from .api.registry import Binarizer, get, list_binarizers, load_plugins, make, register, resolve
from .api.surrogate import Surrogate, composed_autograd, fused, surrogate
from .errors import BnnbenchError
from .version import __version__  # noqa: E402  (re-exported: bnnbench.__version__)

# what a notebook or a plugin needs from the layers above api, imported on first use (they
# pull in data, models, Ray)
_LAZY = {"build_model": "models", "train_cell": "engine.train", "load_run": "engine.evaluate",
         "evaluate_run": "engine.evaluate", "run_grid": "schedule.driver",
         "leaderboard": "report.leaderboard", "load_export": "engine.export",
         "register_arch": "models", "register_dataset": "data", "InMemoryDataset": "data"}


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
