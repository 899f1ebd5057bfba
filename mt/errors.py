"""Errors users see. Each carries a message meant for a person, never a traceback."""


class MTError(Exception):
    """Base class: anything that should be reported to the user as a plain message."""


class InputError(MTError, ValueError):
    """The input text or file cannot be processed (empty, not UTF-8, too large...)."""


class ModelUnavailable(MTError):
    """The model cannot be loaded (offline and not cached, bad path...)."""


class ConfigError(MTError):
    """A configuration file (models.txt) or option is invalid."""


class DeadlineExceeded(MTError):
    """The request's time budget ran out before its work was done (mt.budget)."""

    code = "deadline_exceeded"


class RequestCancelled(MTError):
    """The client went away: the work left for its request is dropped (mt.budget)."""

    code = "client_gone"
