"""How many CPU threads PyTorch uses, decided before torch is imported.

Setting the environment (OMP_NUM_THREADS, OMP_WAIT_POLICY) rather than calling torch lets the
CLI parse and check every argument without paying torch's import; OpenMP reads these when torch
loads. If torch is already loaded (a test, a notebook), the thread count is applied directly.

The default (no `--threads`, no LETHE_THREADS) is the policy `benchmarks/threads.py` chose: torch's
own default — one spinning thread per core — collapses when another process holds a core (every
parallel region waits for the thread that is not running), so lethe uses the cores that are
free right now (measured over a fifth of a second), spinning like torch's. Letting idle threads
sleep (OMP_WAIT_POLICY=PASSIVE) was measured too and costs a third to a half quiet: every small
operator then wakes a sleeping thread.
LETHE_THREAD_POLICY names another policy (`torch`, `free`, `passive`, `free-passive`), for the
benchmark and for anyone who wants torch's behaviour back.
"""

from __future__ import annotations

import os
import sys

POLICIES = ("torch", "free", "passive", "free-passive")
DEFAULT_POLICY = "free"
SAMPLE_SECONDS = 0.2


def apply_threads(threads: int | None) -> None:
    """Pin PyTorch's intra-op threads to `threads`, or apply the default policy when None."""
    if threads is None:
        threads = _policy_threads(os.environ.get("LETHE_THREAD_POLICY") or DEFAULT_POLICY)
        if threads is None:
            return
    if threads < 1:
        from lethe.errors import InputError

        raise InputError(f"--threads must be at least 1 (got {threads})")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def free_cores(sample_seconds: float = SAMPLE_SECONDS) -> int:
    """Cores not busy right now (at least 1): what other processes leave to this one."""
    import psutil

    cores = os.cpu_count() or 1
    busy = psutil.cpu_percent(interval=sample_seconds) / 100 * cores
    return max(1, min(cores, round(cores - busy)))


def _policy_threads(policy: str) -> int | None:
    if policy not in POLICIES:
        from lethe.errors import InputError

        raise InputError(f"LETHE_THREAD_POLICY must be one of {', '.join(POLICIES)} (got {policy!r})")
    if "OMP_NUM_THREADS" in os.environ:  # the user (or a parent lethe) already decided
        return None
    if policy in ("passive", "free-passive"):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if policy in ("free", "free-passive"):
        return free_cores()
    return None
