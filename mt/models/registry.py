"""The supported models (``models.txt``) and how a model name resolves to a :class:`ModelSpec`.

``models.txt`` lists one model a line, the first one being the default::

    Helsinki-NLP/opus-mt-vi-en family=marian license=Apache-2.0 tone=new beam=4  # comment

A model is named by its hub id (optionally ``id@revision``) or by a local directory holding a
transformers model (``config.json`` + weights + tokenizer files). Where the files of a hub model
come from (cache, download) is :mod:`mt.models.hub`'s business.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, ModelUnavailable
from ..settings import current

FAMILIES = ("marian", "t5", "mbart", "nllb", "m2m100")
TONES = ("new", "old")  # new: hóa, thủy ; old: hoá, thuỷ
ENGINES = ("auto", "transformers", "ctranslate2")

# Keys a line may carry; spec fields first, then options (kept as strings in ModelSpec.options).
_FIELD_KEYS = ("family", "license", "revision")
_INT_KEYS = {"beam": 1, "max_len_b": 0, "max_batch_tokens": 1, "max_batch_sentences": 1}  # key: minimum
_FLOAT_KEYS = {"max_len_a": 0.0}
_CHOICE_KEYS = {"tone": TONES, "engine": ENGINES}
_TEXT_KEYS = ("prefix", "strip_prefix", "src_lang", "tgt_lang", "size")
# Published scores (0-100, sacrebleu's scale), cited, never measured here: key -> what it is.
SCORE_KEYS = {
    "bleu_flores": "FLORES-200 devtest vie→eng BLEU",
    "chrf_flores": "FLORES-200 devtest vie→eng chrF",
    "bleu_tst2013": "IWSLT'15 tst2013 vi→en BLEU",
    "bleu_tatoeba": "Tatoeba-test vie→eng BLEU",
    "chrf_tatoeba": "Tatoeba-test vie→eng chrF",
}
_SOURCE_KEY = "score_source"  # where the line's scores are published (URL); required with any score
KNOWN_KEYS = (
    _FIELD_KEYS + tuple(_INT_KEYS) + tuple(_FLOAT_KEYS) + tuple(_CHOICE_KEYS) + _TEXT_KEYS
    + tuple(SCORE_KEYS) + (_SOURCE_KEY,)
)

DEFAULTS = {"tone": "new", "beam": "4", "max_len_a": "1.5", "max_len_b": "10", "engine": "auto"}
# What a family needs when nothing else says so (a local directory not named in models.txt).
FAMILY_DEFAULTS: dict[str, dict[str, str]] = {
    "marian": {},
    "t5": {"prefix": "vi: ", "strip_prefix": "en: "},
    "mbart": {"src_lang": "vi_VN", "tgt_lang": "en_XX"},
    "nllb": {"src_lang": "vie_Latn", "tgt_lang": "eng_Latn"},
    "m2m100": {"src_lang": "vi", "tgt_lang": "en"},
}
# config.json model_type -> family
MODEL_TYPES = {"marian": "marian", "t5": "t5", "mt5": "t5", "mbart": "mbart", "m2m_100": "m2m100", "nllb-moe": "nllb"}



@dataclass(frozen=True)
class ModelSpec:
    """One model: hub id (or local directory) and what it needs to be driven correctly.

    ``options`` holds the line's other keys as written (strings); the properties below give the
    effective typed values, with family and global defaults filled in.
    """

    id: str
    family: str
    license: str = "unknown"
    revision: str | None = None
    options: dict[str, str] = field(default_factory=dict, hash=False)
    comment: str = ""
    path: Path | None = None  # local directory; None for a hub model
    source: str = ""  # "models.txt:3" where it was defined, "" otherwise

    def option(self, key: str, default: str | None = None) -> str | None:
        if key in self.options:
            return self.options[key]
        fam = FAMILY_DEFAULTS.get(self.family, {})
        if key in fam:
            return fam[key]
        return DEFAULTS.get(key, default)

    @property
    def ref(self) -> str:
        """How to name this model on the command line: ``id``, ``id@revision`` or the directory."""
        if self.path is not None:
            return str(self.path)
        return f"{self.id}@{self.revision}" if self.revision else self.id

    @property
    def is_local(self) -> bool:
        return self.path is not None

    @property
    def tone(self) -> str:
        return self.option("tone")

    @property
    def beam(self) -> int:
        return int(self.option("beam"))

    @property
    def max_len_a(self) -> float:
        return float(self.option("max_len_a"))

    @property
    def max_len_b(self) -> int:
        return int(self.option("max_len_b"))

    @property
    def prefix(self) -> str:
        return self.option("prefix", "")

    @property
    def strip_prefix(self) -> str:
        return self.option("strip_prefix", "")

    @property
    def src_lang(self) -> str | None:
        return self.option("src_lang")

    @property
    def tgt_lang(self) -> str | None:
        return self.option("tgt_lang")

    @property
    def engine(self) -> str:
        return self.option("engine")

    @property
    def size(self) -> str:
        return self.option("size", "")

    @property
    def published(self) -> dict[str, float]:
        """Published scores (SCORE_KEYS order), as cited in models.txt: not measured here."""
        return {k: float(self.options[k]) for k in SCORE_KEYS if k in self.options}

    @property
    def score_source(self) -> str:
        return self.options.get(_SOURCE_KEY, "")

    @property
    def max_batch_tokens(self) -> int | None:
        v = self.option("max_batch_tokens")
        return int(v) if v is not None else None

    @property
    def max_batch_sentences(self) -> int | None:
        v = self.option("max_batch_sentences")
        return int(v) if v is not None else None

    def with_revision(self, revision: str | None) -> "ModelSpec":
        return ModelSpec(self.id, self.family, self.license, revision, dict(self.options), self.comment, self.path, self.source)


# ---------------------------------------------------------------------------------------------
# models.txt


def default_registry_path() -> Path:
    """``MT_MODELS_FILE``, else the checkout's top-level ``models.txt``, else the packaged copy."""
    env = current().models_file
    if env:
        return Path(env).expanduser()
    return _checkout_registry() or PACKAGED_REGISTRY


# The copy shipped inside the package (a non-editable install has no checkout around it).
PACKAGED_REGISTRY = Path(__file__).resolve().with_name("models.txt")


def _checkout_registry() -> Path | None:
    """The user-edited top-level ``models.txt`` when running from a project checkout."""
    root = Path(__file__).resolve().parents[2]
    top = root / "models.txt"
    return top if top.is_file() and (root / "pyproject.toml").is_file() else None


def _split_comment(line: str) -> tuple[str, str]:
    """Split at the first ``#`` outside quotes that starts the line or follows a space."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and quote != "'":
            i += 2  # escaped character (shell rules: no escapes inside single quotes)
            continue
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :].strip()
        i += 1
    return line, ""


def _check_value(key: str, value: str) -> str:
    """Return an error message for a bad value, "" when it is fine."""
    if key in _INT_KEYS:
        try:
            n = int(value)
        except ValueError:
            return f"{key}={value!r} is not a whole number"
        if n < _INT_KEYS[key]:
            return f"{key}={value!r} must be at least {_INT_KEYS[key]}"
    elif key in _FLOAT_KEYS:
        try:
            x = float(value)
        except ValueError:
            return f"{key}={value!r} is not a number"
        if not (x >= _FLOAT_KEYS[key]) or x == float("inf"):
            return f"{key}={value!r} must be a finite number >= {_FLOAT_KEYS[key]:g}"
    elif key in SCORE_KEYS:
        try:
            x = float(value)
        except ValueError:
            return f"{key}={value!r} is not a number"
        if not 0.0 <= x <= 100.0:
            return f"{key}={value!r} must be between 0 and 100 (sacrebleu's scale: chrF 0.574 is 57.4)"
    elif key == _SOURCE_KEY and not value.startswith(("https://", "http://")):
        return f"{key}={value!r} must be a URL (where the scores are published)"
    elif key in _CHOICE_KEYS and value not in _CHOICE_KEYS[key]:
        return f"{key}={value!r} must be one of: {', '.join(_CHOICE_KEYS[key])}"
    elif key == "family" and value not in FAMILIES:
        return f"family={value!r} is not supported (supported: {', '.join(FAMILIES)})"
    return ""


def parse_line(line: str, where: str = "<line>") -> ModelSpec | None:
    """Parse one line of models.txt; None for blank and comment lines. ``where`` = "file:line"."""
    body, comment = _split_comment(line)
    if not body.strip():
        return None

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"{where}: {msg}\n    {line.strip()}")

    try:
        tokens = shlex.split(body, comments=False, posix=True)
    except ValueError as e:  # "No closing quotation"
        raise fail(f"cannot read the line ({e})") from None
    model_id, items = tokens[0], tokens[1:]
    if "=" in model_id or "@" in model_id or model_id.startswith("-"):
        raise fail(f"the line must start with a model id, not {model_id!r}")
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise fail(f"expected key=value, got {item!r}")
        if key not in KNOWN_KEYS:
            raise fail(f"unknown key {key!r} (known keys: {', '.join(KNOWN_KEYS)})")
        if key in values:
            raise fail(f"key {key!r} given twice")
        problem = _check_value(key, value)
        if problem:
            raise fail(problem)
        values[key] = value
    if "family" not in values:
        raise fail(f"missing family= (one of: {', '.join(FAMILIES)})")
    if any(k in values for k in SCORE_KEYS) and _SOURCE_KEY not in values:
        raise fail(f"published scores need {_SOURCE_KEY}=URL (a figure without a source is not kept)")
    family = values.pop("family")
    license_ = values.pop("license", "unknown")
    revision = values.pop("revision", None) or None
    return ModelSpec(model_id, family, license_, revision, values, comment, None, where)


def load_registry(path: str | Path | None = None) -> list[ModelSpec]:
    """Read models.txt (``path``, else ``$MT_MODELS_FILE``, else the project's); first = default."""
    p = Path(path).expanduser() if path is not None else default_registry_path()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"model list not found: {p} (set MT_MODELS_FILE to use another file)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read model list {p}: {e}") from None
    specs: list[ModelSpec] = []
    seen: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{p}:{lineno}"
        spec = parse_line(line, where)
        if spec is None:
            continue
        key = spec.id.lower()
        if key in seen:
            raise ConfigError(f"{where}: model {spec.id!r} is already listed at {seen[key]}")
        seen[key] = where
        specs.append(spec)
    if not specs:
        raise ConfigError(f"{p}: no models listed (one line per model, the first is the default)")
    return specs


# ---------------------------------------------------------------------------------------------
# Resolving a name


def _known(registry: list[ModelSpec]) -> str:
    return ", ".join(s.id for s in registry)


def _family_of_dir(d: Path) -> str:
    cfg_path = d / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelUnavailable(f"cannot read {cfg_path}: {e}") from None
    model_type = str(cfg.get("model_type", ""))
    family = MODEL_TYPES.get(model_type)
    if family is None:
        raise ConfigError(
            f"{cfg_path}: model type {model_type or '(none)'!r} is not supported "
            f"(supported: {', '.join(sorted(MODEL_TYPES))})"
        )
    if family == "m2m100":  # NLLB checkpoints say m2m_100 too; their tokenizer tells them apart
        try:
            tok_cfg = json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tok_cfg = {}
        marks = f"{tok_cfg.get('tokenizer_class', '')} {cfg.get('_name_or_path', '')} {d.name}".lower()
        if "nllb" in marks or cfg.get("vocab_size") == 256206:
            family = "nllb"
    return family


def _registry_match(d: Path, registry: list[ModelSpec]) -> ModelSpec | None:
    """The registry entry a directory is a copy of, judged by its name (or its HF cache folder)."""
    names = {d.name.lower()}
    if d.parent.name == "snapshots":  # .../models--org--name/snapshots/<commit>
        names.add(d.parent.parent.name.lower())
    for spec in registry:
        i = spec.id.lower()
        if names & {i.rsplit("/", 1)[-1], i.replace("/", "--"), i.replace("/", "__"), "models--" + i.replace("/", "--")}:
            return spec
    return None


def spec_from_dir(directory: str | Path, registry: list[ModelSpec] | None = None) -> ModelSpec:
    """A ModelSpec for a local model directory (options from models.txt when its name matches)."""
    d = Path(directory).expanduser().resolve()
    if not d.is_dir():
        raise ModelUnavailable(f"model directory not found: {d}")
    if not (d / "config.json").is_file():
        raise ModelUnavailable(f"{d} is not a model directory: it has no config.json")
    family = _family_of_dir(d)
    match = _registry_match(d, registry or [])
    if match is not None and match.family == family:
        return ModelSpec(str(d), family, match.license, None, dict(match.options), match.comment, d, match.source)
    return ModelSpec(str(d), family, "unknown", None, {}, "local directory", d, "")


def resolve_model(name: str | ModelSpec | None = None, registry: list[ModelSpec] | None = None) -> ModelSpec:
    """None -> the default (first) model; a registry id, ``id@revision``; or a local directory."""
    if isinstance(name, ModelSpec):
        return name
    reg = registry if registry is not None else load_registry()
    if name is None or not str(name).strip():
        return reg[0]
    name = str(name).strip()
    by_id = {s.id.lower(): s for s in reg}
    if name.lower() in by_id:
        return by_id[name.lower()]
    path = Path(name).expanduser()
    if path.is_dir():
        return spec_from_dir(path, reg)
    model_id, at, revision = name.rpartition("@")
    if at and model_id.lower() in by_id:
        if not revision:
            raise ConfigError(f"empty revision in {name!r} (use ID@REVISION: a branch, tag or commit)")
        return by_id[model_id.lower()].with_revision(revision)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or path.exists()
    what = "no such model directory" if looks_like_path else "unknown model"
    raise ConfigError(
        f"{what}: {name!r}. Known models: {_known(reg)} (list: mt models); "
        f"or pass a local model directory (--model /path/to/dir)."
    )
