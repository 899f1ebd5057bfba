"""(stub: filled in by its implementation)"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("deepl", __name__)
