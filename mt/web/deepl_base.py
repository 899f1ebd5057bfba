"""What every DeepL API v2 route shares: the blueprint, DeepL's authentication, its language codes,
the character count of /v2/usage and the glossary a request names.

DeepL's clients send ``Authorization: DeepL-Auth-Key KEY`` (mt.web.security reads it as the API
key); DeepL answers 403 for a missing or wrong key, so both are 403 here too, in DeepL's error
shape ``{"message"}`` (mt.web.errors answers that shape under /v2/).
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app

from ..terms import DEFAULT_TERMS, TermRules
from .errors import ApiError
from .security import key_refusal

bp = Blueprint("deepl", __name__)
log = logging.getLogger(__name__)

TAGS = ("DeepL",)
UNLIMITED = 1_000_000_000_000  # what DeepL reports as the limit of an account without one
TARGETS = {"EN": "English", "EN-US": "English (American)", "EN-GB": "English (British)"}
COMMON_ERRORS = ("invalid_json", "invalid_field", "unsupported_media_type", "invalid_api_key")


@bp.before_request
def authorise() -> None:
    """DeepL's rule: a missing or wrong key is 403 (when this server has keys; any key otherwise)."""
    if key_refusal() is not None:
        raise ApiError("invalid_api_key", "Authorization failure: send a valid key as Authorization: "
                                          "DeepL-Auth-Key KEY")


# -- languages ----------------------------------------------------------------------------------
def target_language(value: str | None) -> str:
    """EN, EN-US or EN-GB (any case; empty: EN), upper-cased; DeepL's 400 for anything else."""
    code = (value or "").upper() or "EN"  # empty: English (the only language there is)
    if code not in TARGETS:
        raise ApiError("unsupported_language", "Value for 'target_lang' not supported.")
    return code


def source_language(value: str | None) -> str | None:
    """VI (any case), or None to detect; DeepL's 400 for another language."""
    if value is None or value == "":
        return None
    if value.upper() != "VI":
        raise ApiError("unsupported_language", "Value for 'source_lang' not supported.")
    return "VI"


# -- usage --------------------------------------------------------------------------------------
def usage_store():
    return current_app.extensions["mt_usage"]


def character_limit() -> int:
    settings = current_app.extensions.get("mt_settings")
    return int(getattr(settings, "deepl_character_limit", 0) or 0)


def used_characters() -> int:
    try:
        return usage_store().characters()
    except Exception as error:  # noqa: BLE001 - an unreachable store must not stop translations
        log.warning("reading the DeepL character count failed: %s", error)
        return 0


def check_quota(characters: int) -> None:
    """456 (DeepL's status) when this month's count plus ``characters`` passes the limit."""
    limit = character_limit()
    if limit and used_characters() + characters > limit:
        raise ApiError("quota_exceeded", f"Quota Exceeded: {limit:,} characters a month "
                                         "(--deepl-character-limit); the count starts again next month")


def count_characters(characters: int, store=None) -> None:
    """Add to this month's count (``store``: outside a request, where there is no app context)."""
    if characters <= 0:
        return
    try:
        (store or usage_store()).add_characters(characters)
    except Exception as error:  # noqa: BLE001 - the count is a report; the translation is done
        log.warning("counting DeepL characters failed: %s", error)


# -- glossaries ---------------------------------------------------------------------------------
def term_rules_for(glossary_id: str | None, glossary_ids: list[str] | str | None = None) -> TermRules:
    """The request's glossary (one id, or up to five merged in order: the first wins a term) as the
    pipeline's TermRules (mt.web.glossary_api.term_rules); the default rules without one."""
    if isinstance(glossary_ids, str):
        glossary_ids = [part.strip() for part in glossary_ids.split(",") if part.strip()]
    ids = [glossary_id] if glossary_id else list(glossary_ids or [])
    if not ids:
        return DEFAULT_TERMS
    from .glossary_api import find, term_rules

    merged: dict[str, str] = {}
    for one in ids:  # 404 glossary_not_found for an unknown id
        for source, target in find(one).entries.items():
            merged.setdefault(source, target)
    return term_rules(merged, None, True)


def creation_time(created: float) -> str:
    """Unix seconds as DeepL writes them: ``2026-12-07T16:03:01.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"

