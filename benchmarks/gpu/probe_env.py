"""The device check's env.json: python, torch, CUDA, the card, its driver, ray.

    python3 benchmarks/gpu/probe_env.py OUT/env.json
"""
import json
import platform
import subprocess
import sys

import torch


def probe() -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(card=p.name, memory_gib=round(p.total_memory / 2**30, 1),
                   multiprocessors=p.multi_processor_count, capability=f"{p.major}.{p.minor}")
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True)
        env["driver"] = smi.stdout.strip() or None
    try:
        import ray
        env["ray"] = ray.__version__
    except ImportError as exc:   # the grid step will fail: say why here too
        env["ray"] = f"missing: {exc}"
    return env


if __name__ == "__main__":
    env = probe()
    with open(sys.argv[1], "w") as fh:
        json.dump(env, fh, indent=1)
    print(json.dumps(env))
