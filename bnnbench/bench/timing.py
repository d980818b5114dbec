"""Timing training steps on a device: blocks of steps, peak memory and a profile.

On CUDA a block is timed by CUDA events recorded on the stream around it (the device's own
clock, after a warm-up, as airbench times), with the wall clock beside it: the two agree when
the GPU never waits for the host, and a wall clock well above the events' time says the loop
is bound by the host (Python, launches, data loading). On a CPU the wall clock is the timer.
"""
from __future__ import annotations

import resource
import statistics
import time

import torch

COMPILED = "compiled graphs (bnnbench.api.surrogate.fused, or the model under --compile)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class BlockTimer:
    """Seconds of one block of steps: CUDA events on a CUDA device, else the wall clock;
    `wall` is the wall clock either way. Both end with one device synchronisation."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device

    def __enter__(self) -> "BlockTimer":
        if self.cuda:
            self._events = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            self._events[0].record()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self._events[1].record()
        sync(self.device)
        self.wall = time.perf_counter() - self._t0
        self.seconds = (self._events[0].elapsed_time(self._events[1]) / 1000 if self.cuda
                        else self.wall)


def time_steps(step, batches, warmup: int, steps: int, device: torch.device,
               repeats: int = 1, profile: bool = False) -> dict:
    """Run `warmup` untimed steps, then time `repeats` blocks of `steps` steps; report the
    median block (robust to a noisy, shared machine) and the spread. With `profile`, two more
    steps run under torch.profiler afterwards (not timed) for `where the time goes`."""
    it = iter(batches)
    for _ in range(warmup):
        step(*next(it))
    sync(device)
    reset_peak(device)
    rates, wall_rates, batch = [], [], 0
    for _ in range(repeats):
        seen = 0
        with BlockTimer(device) as timer:
            for _ in range(steps):
                x, y = next(it)
                step(x, y)
                seen += len(y)
        rates.append(seen / timer.seconds)
        wall_rates.append(seen / timer.wall)
        batch = seen / steps
    median = statistics.median(rates)
    out = {"images_per_s": median, "images_per_s_min": min(rates),
           "images_per_s_max": max(rates), "wall_images_per_s": statistics.median(wall_rates),
           "timer": "cuda_events" if device.type == "cuda" else "wall_clock",
           "step_ms": 1000 * batch / median,
           "timed_images": int(batch * steps * repeats), "peak_mem_mb": peak_mb(device)}
    if profile:
        out["profile"] = profile_steps(step, it, device)
    return out


def profile_steps(step, it, device: torch.device, steps: int = 2, top: int = 15) -> list[dict]:
    """The `top` operators by self time (device time on CUDA) over `steps` steps: per step ms
    and share of the total."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step(*next(it))
        sync(device)
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    times: dict[str, float] = {}
    for e in prof.key_averages():
        # inductor's graphs are named by a hash; on a CPU without --compile they are all
        # bnnbench.api.surrogate.fused surrogate gradients
        name = COMPILED if e.key.startswith("## Call CompiledFxGraph") else e.key
        times[name] = times.get(name, 0.0) + getattr(e, key)
    total = sum(times.values()) or 1.0
    ranked = sorted(times.items(), key=lambda item: -item[1])[:top]
    return [{"op": name, "ms_per_step": t / 1000 / steps, "share": t / total}
            for name, t in ranked]
