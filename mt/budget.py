"""A request's budget: a deadline and a "client gone" test, carried by a context variable.

The web layer sets one per request (``with budget_scope(Budget.after(60, cancelled=...))``);
the model queues capture it when work is submitted, drop queued work whose budget is spent and
bound every wait by it, and long stages call :func:`check` between steps. No budget set (the
CLI, folder batches) means no limit: :func:`check` passes and :func:`remaining` is None.
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from .errors import DeadlineExceeded, RequestCancelled

__all__ = ["Budget", "budget_scope", "check", "current", "remaining"]


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Budget:
    """``deadline``: time.monotonic() seconds (None: none); ``cancelled``: true once the client
    is gone (waitress: ``environ["waitress.client_disconnected"]``)."""

    deadline: float | None = None
    cancelled: Callable[[], bool] = _never

    @classmethod
    def after(cls, seconds: float | None, cancelled: Callable[[], bool] | None = None) -> "Budget":
        """A budget ending ``seconds`` from now (None: no deadline)."""
        deadline = None if seconds is None else time.monotonic() + float(seconds)
        return cls(deadline, cancelled or _never)

    def remaining(self) -> float | None:
        """Seconds left (0.0 once past), None without a deadline."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def error(self) -> Exception | None:
        """The error this budget's work should stop with now, or None while it may go on.
        A ``cancelled`` that raises counts as not cancelled (the deadline still holds)."""
        try:
            gone = bool(self.cancelled())
        except Exception:  # noqa: BLE001 - a broken probe must not fail the request
            gone = False
        if gone:
            return RequestCancelled("the client went away; the request was dropped")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return DeadlineExceeded("the request ran past its time budget")
        return None

    def check(self) -> None:
        """Raise :class:`DeadlineExceeded` / :class:`RequestCancelled` when the work should stop."""
        error = self.error()
        if error is not None:
            raise error


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("mt_budget", default=None)


def current() -> Budget | None:
    """The budget of the work running in this context (None: no limit)."""
    return _current.get()


@contextlib.contextmanager
def budget_scope(budget: Budget | None) -> Iterator[Budget | None]:
    """Run the block under ``budget`` (None: no limit), restoring the previous one after."""
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def check() -> None:
    """Raise if the current budget is spent or its client is gone; nothing without a budget."""
    budget = _current.get()
    if budget is not None:
        budget.check()


def remaining(default: float | None = None) -> float | None:
    """Seconds left of the current budget; ``default`` without one (a bounded wait's cap), and
    the smaller of the two when both are set."""
    budget = _current.get()
    left = None if budget is None else budget.remaining()
    if left is None:
        return default
    return left if default is None else min(left, default)
