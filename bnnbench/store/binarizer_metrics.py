"""A binarizer's own quantities in the run store's records (its `metrics()`, e.g. BiPer's qe and
b): each under `binarizer/<key>` in metrics.jsonl rows and result.json, so that no binarizer's
name can take one of the engine's columns and every reader finds them by their prefix.
Records written before that namespace (qe and b in every row and in result.json, a schedule
under its bare name) are read through `from_legacy`.
"""
from __future__ import annotations

import re

PREFIX = "binarizer/"
# a key that is a column, a Tune result key and a TensorBoard tag as it is
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# every key the engine itself wrote into metrics.jsonl rows and result.json before the
# namespace; any other key of such a record was a binarizer's
_ENGINE_KEYS = frozenset({
    "stage", "epoch", "global_epoch", "lr", "train_loss", "train_top1", "test_loss", "top1",
    "top5", "seconds", "images_per_s", "steps", "status", "error", "best_top1", "best_top5",
    "params", "epochs", "device"})


def is_valid_key(key: object) -> bool:
    """Whether a binarizer's metric name can be recorded as `binarizer/<key>`."""
    return isinstance(key, str) and bool(_KEY.match(key))


def of(record: dict) -> dict:
    """The namespaced entries of a metrics.jsonl row or result.json, in their order."""
    return {key: value for key, value in record.items() if key.startswith(PREFIX)}


def from_legacy(record: dict) -> dict:
    """`record` (a metrics.jsonl row or result.json written before the namespace) with a
    binarizer's bare keys (qe, b, a schedule's t, k, tau) under `binarizer/<key>`, their None
    values (the qe of a binarizer without one) left out; anything else (a current record, a
    damaged one that is not a JSON object) comes back as it is."""
    if not isinstance(record, dict) or ("qe" not in record and "b" not in record):
        return record
    return {key if key in _ENGINE_KEYS else PREFIX + key: value
            for key, value in record.items() if key in _ENGINE_KEYS or value is not None}
