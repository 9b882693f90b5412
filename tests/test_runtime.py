"""genlab.runtime: glibc keeps freed activations for reuse (counted in page faults), user settings win."""

import os
import subprocess
import sys
import textwrap

import pytest

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or os.environ.get("LD_PRELOAD"),
                           reason="glibc's allocator only")

# 20 forward passes of one 5x5 convolution over 128 CIFAR-shaped images (a 4 MiB output each), in a fresh
# process; prints what keep_freed_memory did and the minor page faults per pass.
FAULTS = textwrap.dedent("""
    import resource, sys, torch
    from genlab.runtime import keep_freed_memory
    state = keep_freed_memory() if sys.argv[1] == "1" else "not called"
    torch.set_num_threads(1)
    conv, x = torch.nn.Conv2d(3, 32, 5, 2, 2), torch.randn(128, 3, 32, 32)
    with torch.no_grad():
        conv(x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            conv(x)
        print(state, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
""")


def faults_per_pass(call: bool, **env: str) -> tuple[str, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", FAULTS, "1" if call else "0"], capture_output=True, text=True,
                         env={**clean, **env}, check=True).stdout.split()
    return " ".join(out[:-1]), float(out[-1])


@glibc
def test_freed_activations_are_reused_not_faulted_in_again():
    state, faults = faults_per_pass(call=True)
    assert state == "set"
    assert faults < 256  # pages per pass (~50 seen): the 4 MiB output (1,024 pages) reuses freed memory
    state, faults = faults_per_pass(call=False)  # glibc's default, for contrast: it faults the output in again
    assert state == "not called" and faults > 1000


@glibc
def test_the_users_own_allocator_settings_win():
    state, faults = faults_per_pass(call=True, MALLOC_TRIM_THRESHOLD_="131072")
    assert state == "user settings: MALLOC_TRIM_THRESHOLD_"
    assert faults > 1000  # untouched: the user's small trim threshold gives pages back every pass


def test_keep_freed_memory_is_idempotent_and_setup_worker_sets_threads():
    import torch

    from genlab.runtime import keep_freed_memory, setup_worker

    first = keep_freed_memory()
    assert first in ("set", "not glibc", "refused") or first.startswith("user settings: ")
    assert keep_freed_memory() == first
    threads = torch.get_num_threads()
    try:
        setup_worker(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
