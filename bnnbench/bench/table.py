"""The result of `bnnbench bench` as tables: one summary line per (arch, binarizer), its
Markdown (with the device, the method and any profile) and the files it is written to.
"""
from __future__ import annotations

import json
from pathlib import Path


def summarise(rows: list[dict]) -> list[dict]:
    """One line per (arch, binarizer): throughputs, peaks and the headline ratios."""
    by = {(r["arch"], r["binarizer"], r["kind"]): r for r in rows}
    out = []
    for r in rows:
        if r["kind"] == "fp32" or any(o["arch"] == r["arch"] and o["binarizer"] == r["binarizer"]
                                      for o in out):
            continue
        arch, b = r["arch"], r["binarizer"]
        get = lambda kind, key, name=b: by.get((arch, name, kind), {}).get(key)  # noqa: E731
        eng, fp, off = (get("engine", "images_per_s"), get("fp32", "images_per_s", "fp32"),
                        get("official", "images_per_s"))
        out.append({"arch": arch, "binarizer": b, "batch_size": r["batch_size"],
                    "engine_img_s": eng, "fp32_img_s": fp, "official_img_s": off,
                    "engine_over_official": eng / off if eng and off else None,
                    "engine_over_fp32": eng / fp if eng and fp else None,
                    "engine_peak_mb": get("engine", "peak_mem_mb"),
                    "fp32_peak_mb": get("fp32", "peak_mem_mb", "fp32"),
                    "official_peak_mb": get("official", "peak_mem_mb")})
    return out


def _timer(env: dict) -> str:
    return ("CUDA events (wall clock beside them in the JSON)" if env["device"].startswith("cuda")
            else "the wall clock")


def markdown(result: dict) -> str:
    env, s = result["env"], result["settings"]
    fmt = lambda v, p=1: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
    mem = "peak MiB (CUDA allocated)" if env["device"].startswith("cuda") else "peak RSS MiB"
    lines = [f"Device: {env['device_name']} ({env['device']}, {env['cpu_count']} CPUs, "
             f"{env['threads']} torch threads); torch {env['torch']}; bnnbench {env['bnnbench']}; "
             f"{env['created'][:19]}Z; load average at start {fmt((env['loadavg_start'] or [None])[0], 2)}.",
             f"Steps: {s['warmup']} warm-up (discarded), then the median of {s['repeats']} "
             f"blocks of {s['steps']} steps timed by {_timer(env)}, per process; median over "
             f"{s['rounds']} round(s) of fresh processes; compile "
             f"{'on' if s['compile'] else 'off'} (engine); official loop DataLoader workers "
             f"{s['workers']}.", "",
             f"| arch | binarizer | batch | engine img/s | fp32 engine img/s | official-style "
             f"img/s | engine / official | engine / fp32 | {mem} engine / fp32 / official |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["summary"]:
        lines.append(f"| {r['arch']} | {r['binarizer']} | {r['batch_size']} | "
                     f"{fmt(r['engine_img_s'])} | {fmt(r['fp32_img_s'])} | "
                     f"{fmt(r['official_img_s'])} | {fmt(r['engine_over_official'], 2)}× | "
                     f"{fmt(r['engine_over_fp32'], 2)}× | {fmt(r['engine_peak_mb'], 0)} / "
                     f"{fmt(r['fp32_peak_mb'], 0)} / {fmt(r['official_peak_mb'], 0)} |")
    for row in (r for r in result["rows"] if r.get("profile")):
        lines += ["", f"Profile, {row['arch']} / {row['binarizer']} / {row['kind']} "
                      f"(top operators by self time, torch.profiler, 2 steps):", "",
                  "| operator | ms per step | share |", "|---|---:|---:|"]
        lines += [f"| `{p['op']}` | {p['ms_per_step']:.1f} | {100 * p['share']:.1f} % |"
                  for p in row["profile"]]
    return "\n".join(lines) + "\n"


def write(result: dict, out_dir: Path | str) -> tuple[Path, Path]:
    """result → <out_dir>/bench-<device>.json and .md (the latest run per device kind)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "bench-" + result["env"]["device"].split(":")[0]
    jpath, mpath = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    jpath.write_text(json.dumps(result, indent=2) + "\n")
    mpath.write_text(markdown(result))
    return jpath, mpath
