"""Published numbers (results/reference/*.csv, shipped as package data `bnnbench.reference`),
and those a registered binarizer declares in its `published` attribute (after the files'
rows, with the same columns: method = its `paper`, bits 1/1, or 32/32 if it is not binary).

The report puts every result beside the number its paper published; keeping those numbers as
data, each with its source, makes the comparison reproducible and reviewable (see
results/reference/README.md for the columns and the rules). This module is not called
`bnnbench/reference.py` because that name would hide the data package `bnnbench.reference`.
"""
from __future__ import annotations

import functools
import math
from importlib import resources

import pandas as pd

REFERENCE_COLUMNS = ["method", "binarizer", "dataset", "arch", "variant", "bits", "top1", "top5",
                     "source", "note"]
_TEXT = ["method", "binarizer", "dataset", "arch", "variant", "bits", "source", "note"]


@functools.lru_cache(maxsize=None)
def _load_all() -> pd.DataFrame:
    frames = []
    for entry in sorted(resources.files("bnnbench.reference").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".csv"):
            with entry.open("r", encoding="utf-8") as fh:
                frames.append(pd.read_csv(fh, dtype={c: str for c in _TEXT},
                                          keep_default_na=False, na_values={"top1": [""],
                                                                            "top5": [""]}))
    df = pd.concat(frames, ignore_index=True)[REFERENCE_COLUMNS]
    df["top1"] = df["top1"].astype(float)
    df["top5"] = df["top5"].astype(float)
    return df


def _declared() -> pd.DataFrame:
    """The rows the registered binarizers declare (plugins loaded so far included)."""
    from ..api.registry import get, list_binarizers
    rows = [{"method": cls.paper or name, "binarizer": name, "variant": "", "note": "",
             "bits": "1/1" if cls.binary else "32/32", "top5": math.nan, **entry}
            for name in list_binarizers() for cls in [get(name)] for entry in cls.published]
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS).astype({"top1": float, "top5": float})


def _all_rows() -> pd.DataFrame:
    declared = _declared()
    return _load_all() if declared.empty else pd.concat([_load_all(), declared],
                                                          ignore_index=True)


def load_reference(dataset: str | None = None) -> pd.DataFrame:
    """Every published row (of `dataset` if given), in file order, then the declared ones;
    empty strings, not NaN, in the text columns, NaN where a top-5 is not published."""
    df = _all_rows()
    if dataset is not None:
        df = df[df["dataset"] == dataset]
    return df.reset_index(drop=True).copy()


def match_published(dataset: str, arch: str, binarizer: str,
                    variant: str | None = None, bits: str = "1/1") -> pd.Series | None:
    """The published row for one of our results, or None.

    Candidates: rows with `bits` ("1/1"; "32/32" for a full-precision entry such as `fp`) and
    the same dataset, arch and binarizer (registry name).
    A row published for another backbone variant than `variant` is not a match; a row whose
    variant equals `variant` wins over one that does not state its variant; ties go to the first
    in file order (the files list the official README's number first where sources disagree).
    With `variant` None every candidate counts.
    """
    df = _all_rows()
    hits = df[(df["dataset"] == dataset) & (df["arch"] == arch) & (df["binarizer"] == binarizer)
              & (df["bits"] == bits)]
    if variant:
        same, unstated = hits[hits["variant"] == variant], hits[hits["variant"] == ""]
        hits = same if not same.empty else unstated
    return None if hits.empty else hits.iloc[0]
