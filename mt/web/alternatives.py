"""``POST /api/alternatives``: other translations of one sentence, for a translator to choose from.

They are the engine's n best hypotheses (beam search with a beam of at least n; mt.engines.nbest),
distinct and best first, computed on the same batching worker as translations, with the request's
budget. The sentence is normalised as the pipeline normalises it (word-segmented input read
plainly, tone marks), so the first alternative is the usual translation whenever n is at most the
model's beam. Nothing is cached: a translator asks for alternatives of one sentence at a time.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from flask import Blueprint, current_app
from pydantic import BeforeValidator, Field, StrictInt

from ..budget import check
from ..engines.base import MAX_ALTERNATIVES
from ..errors import InputError
from ..text.normalize import is_word_segmented, normalize
from ..text.segment import MAX_SEGMENT_CHARS
from . import schemas
from .api import TRANSLATE_ERRORS, checked_text
from .openapi import operation
from .security import limited, needs_api_key, public_model_name

bp = Blueprint("alternatives", __name__)

DEFAULT_ALTERNATIVES = 3
N_MESSAGE = f"n must be an integer from 1 to {MAX_ALTERNATIVES}"
SENTENCE = (f"One Vietnamese sentence, as written (word-segmented input is read as the pipeline reads it); at most "
            f"{MAX_SEGMENT_CHARS} characters, the longest segment the pipeline makes")


def model_inputs(sentences: list[str], engine) -> list[str]:
    """What the model sees for each sentence: normalised as the pipeline does (mt.pipeline._prepare),
    within the segmenter's bound (a longer "sentence" is not one: InputError). Checks the budget."""
    check()
    for sentence in sentences:
        if len(sentence) > MAX_SEGMENT_CHARS:
            raise InputError(f"a sentence for alternatives has at most {MAX_SEGMENT_CHARS} characters, "
                             f"not {len(sentence)}: ask for one sentence at a time")
    tone = engine.spec.tone
    return [normalize(s, tone=tone, word_segmented=is_word_segmented(s)).text if s.strip() else "" for s in sentences]


class AlternativesRequest(schemas.RequestModel):
    """POST /api/alternatives."""

    sentence: Annotated[schemas.NonBlank, Field(max_length=MAX_SEGMENT_CHARS, description=SENTENCE)]
    n: Annotated[StrictInt, Field(ge=1, le=MAX_ALTERNATIVES), BeforeValidator(schemas.whole_number)] = Field(
        DEFAULT_ALTERNATIVES, description=f"How many alternatives, 1 to {MAX_ALTERNATIVES} (fewer come back when "
                                          "hypotheses coincide)")
    model: schemas.ModelId = None
    beam: schemas.Beam = None
    api_key: schemas.ApiKey = None

    messages: ClassVar[dict[str, str]] = {"sentence": f"sentence must be a string of at most {MAX_SEGMENT_CHARS} characters",
                "n": N_MESSAGE, "model": schemas.MODEL_MESSAGE, "beam": schemas.BEAM_MESSAGE,
                "api_key": "api_key must be a string"}


class AlternativesResponse(schemas.ResponseModel):
    """Distinct translations, best first (the first is the usual one when n is at most the beam)."""

    alternatives: list[str] = Field(description="At most n distinct English translations, best first")
    model: str = Field(description="The model that made them, as GET /api/models names it")


@bp.post("/api/alternatives")
@limited
@needs_api_key
@operation(
    summary="Other translations of one sentence (the model's n best)", tags=("API",),
    description=(
        "Beam search with a beam of at least `n` (or `beam`, if larger) returns the model's `n` best hypotheses; "
        "duplicates are dropped, so fewer than `n` may come back. The sentence is normalised as /api/translate "
        "normalises it. Not cached; translation memory and glossaries do not apply."),
    body=AlternativesRequest, response=AlternativesResponse,
    example={"sentence": "Hà Nội là thủ đô của Việt Nam.", "n": 3},
    errors=TRANSLATE_ERRORS,
)
def alternatives(body: AlternativesRequest):
    translator = current_app.extensions["mt"]
    found = translator.alternatives(checked_text(body.sentence), body.n, body.model, body.beam)
    return {"alternatives": found, "model": public_model_name(translator.model_id)}
