"""CPU thread counts of the engines, from the settings' ``engine_threads`` / ``ct2_inter_threads``
(MT_THREADS / MT_CT2_INTER_THREADS, validated in mt.settings).

torch takes its count through ``torch.set_num_threads`` (which also sizes its OpenMP pool);
CTranslate2 takes ``inter_threads`` / ``intra_threads`` when the model loads (:func:`thread_split`).
"""

from __future__ import annotations

import os
import threading

from ..settings import current

_TORCH_THREADS_SET = False


def wanted_threads(threads: int | None = None) -> int:
    """CPU threads for an engine: ``threads``, else the settings' (MT_THREADS), else all cores."""
    return threads or current().engine_threads or os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> int:
    """torch CPU threads: ``MT_THREADS`` if set, else all cores. Done once per process (a later
    call only reports the count), so a caller that changed it on purpose keeps its choice."""
    global _TORCH_THREADS_SET
    import torch

    n = wanted_threads(threads)
    if not _TORCH_THREADS_SET:
        torch.set_num_threads(n)
        _TORCH_THREADS_SET = True
    return torch.get_num_threads()


def thread_split(threads: int, inter: int | None = None) -> tuple[int, int]:
    """(batches decoded at once, threads per batch) for ``threads`` CPU threads.

    CTranslate2 runs ``inter_threads`` batches in parallel on one copy of the weights; on a
    2-core machine two batches on one thread each decode 2.0× faster than one batch on one
    thread, while one batch on two threads is slower (int8 GEMMs this small do not split well;
    docs/ENGINES.md, CTranslate2). Up to 4 batches at once; threads left over go to each batch.
    ``inter`` (else the settings' MT_CT2_INTER_THREADS) overrides the first number."""
    threads = max(1, threads)
    inter = inter or current().ct2_inter_threads or min(threads, 4)
    return inter, max(1, threads // inter)


def threads_started_by(build):
    """``build()``'s result and the native threads it started (Linux: /proc/self/task), so a
    library's own worker threads (CTranslate2's) can be reniced later; () elsewhere."""
    def tids() -> set[int]:
        try:
            return {int(name) for name in os.listdir("/proc/self/task")}
        except OSError:
            return set()

    before = tids()
    result = build()
    return result, tuple(sorted(tids() - before))


class ThreadPriority:
    """Sets a fixed group of native threads to nice ``high`` (0) or ``low`` per model call: a call
    serving only long jobs runs at ``low``, so short requests (this worker's or another's) get the
    cores. Where the threads cannot be raised back (not root, no CAP_SYS_NICE) they stay at
    ``high`` for good."""

    def __init__(self, threads: tuple[int, ...], low: int = 19, high: int = 0):
        try:  # never above the priority of the thread that made them (the niced alignment worker's e5)
            high = max(high, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        except (OSError, AttributeError):
            pass
        self.threads, self.high, self.low = threads, high, max(low, high)
        self.current = high
        self._lock = threading.Lock()  # set by the model's thread and by a short job's arrival
        self.enabled = bool(threads) and can_raise_priority() and self._try(high)
        if not self.enabled and threads and high > 0:
            self._try(high)  # lowering needs no privilege: these threads stay at ``high``

    def _try(self, nice: int) -> bool:
        done = False
        for tid in self.threads:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                done = True
            except ProcessLookupError:  # that thread has ended: the others still count
                continue
            except OSError:  # not permitted
                return False
        return done

    def set(self, urgent: bool) -> None:
        wanted = self.high if urgent else self.low
        with self._lock:
            if self.enabled and wanted != self.current:
                if self._try(wanted):
                    self.current = wanted
                elif urgent:  # cannot be raised back: the rule turns itself off
                    self.enabled = False


def can_raise_priority() -> bool:
    """Whether a thread lowered to nice 19 can be raised back to 0 here (root, or RLIMIT_NICE
    allows it): without that, lowering a shared thread's priority would be for good."""
    try:
        import resource

        return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20
    except (AttributeError, ImportError, OSError, ValueError):
        return False
