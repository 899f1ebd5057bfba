"""CPU thread counts of the engines: one reading of ``MT_THREADS`` / ``MT_CT2_INTER_THREADS``.

torch takes its count through ``torch.set_num_threads`` (which also sizes its OpenMP pool);
CTranslate2 takes ``inter_threads`` / ``intra_threads`` when the model loads (:func:`thread_split`).
"""

from __future__ import annotations

import os
import threading

from ..errors import ConfigError

_TORCH_THREADS_SET = False


def env_count(name: str) -> int | None:
    """A count (>= 1) from environment variable ``name``; None when unset or blank, ConfigError
    naming the variable when it is not a whole number >= 1."""
    env = os.environ.get(name, "").strip()
    if not env:
        return None
    try:
        n = int(env)
    except ValueError:
        raise ConfigError(f"{name}={env!r} is not a whole number") from None
    if n < 1:
        raise ConfigError(f"{name} must be >= 1, not {n}")
    return n


def wanted_threads() -> int:
    """CPU threads for an engine: ``MT_THREADS`` if set, else all cores (both engines read this)."""
    return env_count("MT_THREADS") or os.cpu_count() or 1


def configure_threads() -> int:
    """torch CPU threads: ``MT_THREADS`` if set, else all cores. Done once per process (a later
    call only reports the count), so a caller that changed it on purpose keeps its choice."""
    global _TORCH_THREADS_SET
    import torch

    n = wanted_threads()
    if not _TORCH_THREADS_SET:
        torch.set_num_threads(n)
        _TORCH_THREADS_SET = True
    return torch.get_num_threads()


def thread_split(threads: int) -> tuple[int, int]:
    """(batches decoded at once, threads per batch) for ``threads`` CPU threads.

    CTranslate2 runs ``inter_threads`` batches in parallel on one copy of the weights; on a
    2-core machine two batches on one thread each decode 2.0× faster than one batch on one
    thread, while one batch on two threads is slower (int8 GEMMs this small do not split well;
    docs/DESIGN.md, Engines). Up to 4 batches at once; threads left over go to each batch.
    ``$MT_CT2_INTER_THREADS`` overrides the first number."""
    threads = max(1, threads)
    inter = env_count("MT_CT2_INTER_THREADS") or min(threads, 4)
    return inter, max(1, threads // inter)


def nice_setting(name: str, default: int = 10) -> int:
    """A nice value from ``$name`` (0-19; ``default`` when unset or not a number)."""
    try:
        return max(0, min(19, int(os.environ.get(name, "").strip() or default)))
    except ValueError:
        return default


def lower_priority(nice: int) -> None:
    """This thread's nice value raised to ``nice`` (never lowered: an already niced process stays so)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except (OSError, AttributeError):
        pass  # not permitted or not Linux: the work runs at the ordinary priority
