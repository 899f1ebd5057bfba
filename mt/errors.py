"""Errors users see. Each carries a message meant for a person, never a traceback, and the API's
error ``code`` (mt.web.errors.ERROR_CODES gives its HTTP status): one handler answers them all."""


class MTError(Exception):
    """Base class: anything that should be reported to the user as a plain message."""

    code = "internal_error"


class InputError(MTError, ValueError):
    """The input text or file cannot be processed (empty, not UTF-8, too large...)."""

    code = "invalid_input"


class ModelUnavailable(MTError):
    """The model cannot be loaded (offline and not cached, bad path...)."""

    code = "model_unavailable"


class ConfigError(MTError):
    """A configuration file (models.txt) or option is invalid."""

    code = "internal_error"  # a server's own configuration: never the client's fault


class DeadlineExceeded(MTError):
    """The request's time budget ran out before its work was done (mt.budget)."""

    code = "deadline_exceeded"


class RequestCancelled(MTError):
    """The client went away: the work left for its request is dropped (mt.budget)."""

    code = "client_gone"
