"""Peak memory of one inference call, in a fresh process: ``python -m benchmarks.memprobe JSON``.

Prints one JSON line ``{"peak_mb": ..., "base_mb": ...}``: the largest resident set size (RSS,
``/proc/self/statm``, sampled every millisecond by a thread while the call runs) above the RSS just
before the call. A fresh process keeps the allocator's cached memory of earlier calls out of it.
torch's CPU allocations are not seen by tracemalloc, hence RSS.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import torch

from benchmarks.suite import inference_case


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_during(fn) -> tuple[float, float]:
    """``(peak RSS above the start, start RSS)`` in MiB while ``fn()`` runs."""
    base = rss_mb()
    peak, done = [base], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.001)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    peak[0] = max(peak[0], rss_mb())
    return peak[0] - base, base


def main() -> None:
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(int(spec.get("threads", 1)))
    model, x, run = inference_case(spec["model"], spec["size"], spec["mode"], spec.get("tile"), spec.get("overlap"),
                                     spec.get("batch", 1))
    with torch.no_grad():
        model(x[..., :32, :32])  # warm-up on a small input (lazy init, kernels)
        delta, base = peak_during(run)
    print(json.dumps({"peak_mb": round(delta, 1), "base_mb": round(base, 1)}))


if __name__ == "__main__":
    main()
