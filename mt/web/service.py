"""The web layer's one door to the model: :class:`TranslatorService` owns the engine (loaded once,
lazily or at start-up), the sentence cache and the request batcher; views never touch the engine.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

from ..errors import ModelUnavailable
from ..document import Document
from ..pipeline import translate_document, translate_documents
from ..terms import DEFAULT_TERMS, TermRules
from .errors import ApiError

log = logging.getLogger(__name__)

WHAT_TO_DO = (
    "To fix it: on a machine with internet access run `mt download {model}` (it fills the local "
    "Hugging Face cache), or start the server with `--model` pointing to a local model directory; "
    "then restart the server."
)


def with_advice(reason: str, model: str | None) -> str:
    """The load error, plus what to do about it unless the message already says so."""
    reason = reason.strip()
    if "mt download" in reason or "--model" in reason:
        return reason
    return f"{reason.rstrip('.')}. " + WHAT_TO_DO.format(model=model or "MODEL")


def is_engine(value: Any) -> bool:
    return hasattr(value, "translate") and hasattr(value, "spec")


class TranslatorService:
    """The web layer's one door to the model: text in, aligned :class:`Document` out.

    ``engine_or_loader`` is a loaded engine or a zero-argument callable returning one; the
    callable runs at most once per process (first use, or :meth:`ensure_loaded` at start-up).
    When it fails, the reason is kept and every translation answers 503 with it: the server
    stays up so the page can say what is wrong.
    """

    def __init__(self, engine_or_loader: Any, cache, *, model_name: str | None = None):
        self.cache = cache
        self._lock = threading.Lock()
        self._engine = None
        self._loader: Callable[[], Any] | None = None
        self._error: str | None = None
        self._attempted = False
        if is_engine(engine_or_loader):
            self._engine = engine_or_loader
            self._attempted = True
        elif callable(engine_or_loader):
            self._loader = engine_or_loader
        else:
            raise TypeError("create_app needs an engine or a callable that loads one")
        self.model_name = model_name or (self._engine.spec.id if self._engine is not None else None)
        self._registry: list | None = None

    # -- the model -------------------------------------------------------------------------
    def ensure_loaded(self):
        """Return the engine, loading it on first call; raise ModelUnavailable with the reason."""
        if self._engine is not None:
            return self._engine
        with self._lock:
            if not self._attempted:
                self._attempted = True
                try:
                    self._engine = self._loader()
                    log.info("model %s loaded", self._engine.spec.id)
                except ModelUnavailable as error:
                    self._error = str(error)
                except Exception as error:  # noqa: BLE001 - a bad model must not take the server down
                    log.exception("loading the model failed")
                    self._error = f"{type(error).__name__}: {error}"
                if self._error:
                    log.warning("serving without a model: %s", self._error)
        if self._engine is None:
            raise ModelUnavailable(self.unavailable_message(self._error or "the model is not loaded"))
        return self._engine

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def model_id(self) -> str | None:
        """The id of the served model (or of the one that failed to load)."""
        if self._engine is not None:
            return self._engine.spec.id
        return self.model_name

    def served_names(self) -> set[str]:
        names = {name for name in (self.model_name, self.model_id) if name}
        if self._engine is not None:
            spec = self._engine.spec
            names.add(spec.id)
            if getattr(spec, "path", None):
                names.add(str(spec.path))
        from .security import public_model_name  # a local model's folder name, as /api/models shows it

        return names | {public_model_name(name) for name in names}

    def registry(self) -> list:
        """The model registry (models.txt), read once; [] when it cannot be read."""
        if self._registry is None:
            try:
                from ..models import load_registry

                self._registry = list(load_registry())
            except Exception as error:  # noqa: BLE001 - the registry only decorates the page
                log.warning("cannot read the model registry: %s", error)
                self._registry = []
        return self._registry

    def check_model(self, model: str | None) -> None:
        """Refuse (422) a model this process does not serve, saying what it does serve."""
        if model is None or model == "" or model in self.served_names():
            return
        served = self.model_id or "no model"
        if any(spec.id == model for spec in self.registry()):
            raise ApiError(
                "model_not_loaded",
                f"{model} is in the registry but this server serves {served}; start a server with "
                f"--model {model} to use it",
            )
        known = ", ".join(spec.id for spec in self.registry()) or served
        raise ApiError("unknown_model", f"unknown model {model!r}; this server serves {served} (registry: {known})")

    def settings_for(self, engine, beam: int | None):
        if beam is None:
            return None
        return dataclasses.replace(engine.settings, beam=beam)

    # -- translation -----------------------------------------------------------------------
    def translate(self, text: str, model: str | None = None, beam: int | None = None, *,
                  details: bool = True, terms: TermRules = DEFAULT_TERMS) -> Document:
        """Translate one article through the shared pipeline (cache first, then the model).

        ``details=False`` skips word links and quality scores: LibreTranslate clients only read text.
        ``terms``: the request's glossary and protected spans (mt.web.glossary_api.term_rules).
        """
        self.check_model(model)
        engine = self.ensure_loaded()
        return translate_document(text, engine, self.cache, settings=self.settings_for(engine, beam),
                                  links=details, quality=details, terms=terms)

    def translate_many(self, texts: list[str], model: str | None = None, beam: int | None = None) -> list[str]:
        """The translations of many texts from ONE pipeline call (LibreTranslate's q list): their
        distinct sentences share one cache lookup and one model call. No word links or scores."""
        self.check_model(model)
        engine = self.ensure_loaded()
        documents = translate_documents(texts, engine, self.cache, settings=self.settings_for(engine, beam),
                                        links=False, quality=False)
        return [document.translation for document in documents]

    def alternatives(self, sentence: str, n: int, model: str | None = None, beam: int | None = None) -> list[str]:
        """Up to ``n`` distinct translations of one sentence, best first (mt.web.alternatives)."""
        return self.alternatives_many([sentence], n, model, beam)[0]

    def alternatives_many(self, sentences: list[str], n: int, model: str | None = None,
                          beam: int | None = None) -> list[list[str]]:
        """Each sentence's alternatives from ONE batched engine call (LibreTranslate's q list)."""
        from .alternatives import model_inputs

        self.check_model(model)
        engine = self.ensure_loaded()
        return engine.alternatives(model_inputs(sentences, engine), n, self.settings_for(engine, beam))

    def unavailable_message(self, reason: str) -> str:
        return f"the translation model is not available: {with_advice(reason, self.model_id)}"

    def model_rows(self) -> list[dict]:
        """The registry with, for each model, whether this process serves it."""
        try:
            from ..models import model_status_rows

            rows = [dict(row) for row in model_status_rows()]
        except Exception as error:  # noqa: BLE001
            log.warning("cannot list the models: %s", error)
            rows = [{"id": spec.id, "family": spec.family, "license": spec.license} for spec in self.registry()]
        served = self.served_names()
        for row in rows:
            row["served"] = row.get("id") in served
            row["loaded"] = row["served"] and self.ready
        if self.model_id and not any(row["served"] for row in rows):
            spec = self._engine.spec if self._engine is not None else None
            rows.insert(0, {
                "id": self.model_id,
                "family": getattr(spec, "family", None),
                "license": getattr(spec, "license", None),
                "default": False,
                "cached": self.ready,
                "served": True,
                "loaded": self.ready,
            })
        return rows


# -- batching across requests -----------------------------------------------------------------
def with_batching(engine_or_loader: Any, max_sentences: int | None, max_wait_ms: float | None) -> Any:
    """The engine (or loader) wrapped so that concurrent requests share model calls."""
    from ..engines.request_queue import DEFAULT_BATCH_SENTENCES, DEFAULT_BATCH_WAIT_MS, BatchingEngine

    options = {"max_sentences": DEFAULT_BATCH_SENTENCES if max_sentences is None else max_sentences,
               "max_wait_ms": DEFAULT_BATCH_WAIT_MS if max_wait_ms is None else max_wait_ms}
    if is_engine(engine_or_loader):
        return BatchingEngine(engine_or_loader, **options)
    if callable(engine_or_loader):
        loader = engine_or_loader

        @wraps(loader)
        def load_batched():
            return BatchingEngine(loader(), **options)

        return load_batched
    return engine_or_loader  # TranslatorService says what is wrong with it


def batching_stats(engine: Any) -> dict | None:
    """The batcher's counts (model calls, requests, sentences, mean batch); None without batching."""
    stats = getattr(engine, "stats", None)
    return stats() if callable(stats) else None
