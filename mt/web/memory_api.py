"""(stub: filled in by its implementation)"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("memory_api", __name__)
