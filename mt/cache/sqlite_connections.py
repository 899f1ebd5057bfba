"""Per-thread SQLite connections of :class:`mt.cache.sqlite.SentenceCache`, and what a fork
does to them (a mixin: the cache's state lives in the cache)."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

from .sqlite_support import ConnectionSlot, close_quietly, read_only_uri

# SQLite connections must not cross fork() (gunicorn --preload forks after the app has opened
# its cache): before a fork every cache closes its idle connections (they reopen on next use);
# one busy in another thread stays with the parent, and the child's copy turns itself off.
_FORK_ORPHANS: list = []  # busy connections a child inherited: never used there, kept alive
INSTANCES: weakref.WeakSet = weakref.WeakSet()


def _before_fork() -> None:
    for cache in list(INSTANCES):
        cache._close_idle_connections_for_fork()


def _after_fork_in_parent() -> None:
    for cache in list(INSTANCES):
        cache._busy_at_fork = False


def _after_fork_in_child() -> None:
    for cache in list(INSTANCES):
        cache._forget_parent_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


class ConnectionsMixin:
    """Opening, lending and closing this cache's connections (one per thread)."""

    def _close_all_connections(self) -> None:
        with self._lock:
            holders = list(self._holders)
        for holder in holders:
            with holder.lock:
                close_quietly(holder)

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so that close() and the fork hook may close another
        # thread's idle connection; in use, each connection belongs to one thread.
        if self._open_mode:
            conn = sqlite3.connect(read_only_uri(self.path, self._open_mode), uri=True, timeout=self.timeout,
                                   isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable enough for a cache
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened on first use, locked while in use."""
        if os.getpid() != self._pid:  # forked without os.register_at_fork hooks running
            self._forget_parent_connections()
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = ConnectionSlot()
            with self._lock:
                self._holders.add(holder)
        with holder.lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the cache has been closed")
            if holder.conn is None:
                holder.conn = self._connect()
            yield holder.conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (for inspection and tests; the cache itself uses _using)."""
        with self._using() as conn:
            return conn

    def _close_idle_connections_for_fork(self) -> None:
        """Before fork (in the parent): close every connection not in use, so the child
        inherits no SQLite state; they reopen on next use."""
        with self._lock:
            holders = list(self._holders)
        busy = False
        for holder in holders:
            if not holder.lock.acquire(blocking=False):
                busy = True
                continue
            try:
                close_quietly(holder)
            finally:
                holder.lock.release()
        self._busy_at_fork = busy

    def _forget_parent_connections(self) -> None:
        """In a forked child: never touch the parent's connections, open fresh ones. If one was
        in use by another thread at the fork, SQLite's lock bookkeeping may be inconsistent
        here, so this copy of the cache turns itself off (on first use, where a warning helps)."""
        if os.getpid() == self._pid:
            return
        _FORK_ORPHANS.extend(holder for holder in list(self._holders) if holder.conn is not None)
        self._lock = threading.Lock()  # the parent's may have been held by another thread
        self._reset_process_state()
        self._broken_by_fork, self._busy_at_fork = self._busy_at_fork, False
