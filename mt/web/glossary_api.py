"""(stub: filled in by its implementation)"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("glossary_api", __name__)
