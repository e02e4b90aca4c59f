"""How many CPU threads PyTorch uses, decided before torch is imported.

Setting the environment (OMP_NUM_THREADS, OMP_WAIT_POLICY) rather than calling torch lets the
CLI parse and check every argument without paying torch's import; OpenMP reads these when torch
loads. If torch is already loaded (a test, a notebook), the thread count is applied directly.
"""

from __future__ import annotations

import os
import sys


def apply_threads(threads: int | None) -> None:
    """Pin PyTorch's intra-op threads to `threads` (None leaves the default below)."""
    if threads is None:
        return
    if threads < 1:
        from lethe.errors import InputError

        raise InputError(f"--threads must be at least 1 (got {threads})")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
