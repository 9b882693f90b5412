"""How a process that trains or measures on the CPU is set up: torch's threads and glibc's allocator.

glibc's malloc serves a block above its mmap threshold by mmap, and hands freed memory at the top of its heap
back to the kernel once more than its trim threshold is free; the next block of that size is then faulted in
again, 4 KiB page by page, each page zeroed by the kernel. A conv net's activations are such blocks
(ConvNet3-32 on 128 CIFAR images: a 4 MiB output per layer), freed and requested again every batch, so a
pass on the CPU can spend much of its time in page faults. glibc raises both thresholds by itself after it
frees a large mmapped block, so how badly a process suffers depends on its history. Measured in fresh
processes (2-core Xeon, glibc 2.36, torch 2.13, `python benchmarks/bench_allocator.py --measures`, medians of
3-5 interleaved processes), default → `keep_freed_memory`:
  ConvNet3-32, 128-image blocks, forward:   2 threads 28.8-32.3 → 17.5-18.6 ms per 512 images (1.5-1.8x),
                                            1 thread 33.0-34.6 → 27.3-27.9 ms (1.2-1.3x); 8-11k faults → 0
  the same, SGD training steps:             2 threads 1.07-1.5x, 1 thread 0.96-1.00x
  every registered measure (float32):       0.89-1.08x, i.e. noise (its large blocks raise glibc's thresholds)
  `genlab run` ch4_convnet3 + conv4_capacity, small profiles, 1 worker: 35.7 → 33.4 s (562k → 140k faults).
A one-pass convolution test (tests/test_cpu.py) faults in ~2,000 pages per call by default and none with it.

`keep_freed_memory` fixes both thresholds (M_MMAP_THRESHOLD 32 MiB, glibc's largest; M_TRIM_THRESHOLD 1 GiB),
so such blocks are reused from the heap: the process keeps up to 1 GiB it freed (its own peak, not more) in
exchange. genlab calls it in every process that trains or measures (the CLI, pool and Ray workers, Slurm
tasks); a notebook can call it too. Environment settings win: with any of glibc's MALLOC_*_ variables,
GLIBC_TUNABLES or an LD_PRELOADed allocator (jemalloc, tcmalloc) it changes nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2 ** 20  # bytes: blocks up to this come from the heap (glibc refuses more than 32 MiB)
TRIM_THRESHOLD = 2 ** 30  # bytes of free memory at the heap's top kept before any is given back
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                 "GLIBC_TUNABLES", "LD_PRELOAD")

_state: str | None = None  # what the first call did; later calls repeat it


def keep_freed_memory() -> str:
    """Set glibc's malloc to keep freed blocks for reuse (module docstring); idempotent.

    Returns what happened: "set", or why not ("not glibc", "user settings: NAME", "refused").
    """
    global _state
    if _state is None:
        _state = _apply()
    return _state


def _apply() -> str:
    user = [k for k in USER_SETTINGS if os.environ.get(k)]
    if user:
        return f"user settings: {', '.join(user)}"
    if not sys.platform.startswith("linux"):
        return "not glibc"
    libc = ctypes.CDLL(None)  # this process's own symbols, the C library's among them
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):  # musl
        return "not glibc"
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return "set" if ok else "refused"


def setup_worker(threads: int) -> None:
    """A process about to train or measure: `threads` torch threads and the allocator set as above."""
    import torch

    keep_freed_memory()
    torch.set_num_threads(threads)
