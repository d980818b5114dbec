"""The device check's bench.json/.md: the rows of its `bnnbench bench` runs (one per arch
and binarizer, so a time box keeps what finished) as one table.

    python3 benchmarks/gpu/merge_bench.py WORK/bench OUT
"""
import json
import sys
from pathlib import Path

from bnnbench.bench import benchmark as bench


def merge(runs: list[dict]) -> dict:
    """One result from several: the first run's environment and settings, every row."""
    rows = [row for run in runs for row in run["rows"]]
    settings = {**runs[0]["settings"], "kinds": sorted({row["kind"] for row in rows})}
    return {"env": runs[0]["env"], "settings": settings, "rows": rows,
            "summary": bench.summarise(rows)}


if __name__ == "__main__":
    found = sorted(Path(sys.argv[1]).glob("*/bench-*.json"))
    if not found:
        sys.exit("no bench measurement finished")
    merged = merge([json.loads(p.read_text()) for p in found])
    out = Path(sys.argv[2])
    (out / "bench.json").write_text(json.dumps(merged, indent=2) + "\n")
    (out / "bench.md").write_text(bench.markdown(merged))
    print(bench.markdown(merged))
