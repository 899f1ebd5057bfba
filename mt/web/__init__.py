"""The web page and the HTTP API: ``create_app`` builds the Flask app (see :mod:`mt.web.app`).

Modules: ``app`` (the factory), ``service`` (the one door to the model), blueprints ``api``
(/api/...), ``libre`` (LibreTranslate's /translate), ``pages`` (the page, downloads, /docs) and
``ops`` (health, readiness, /openapi.json); ``schemas`` (request/response bodies, declared once),
``openapi`` (the document generated from them), ``errors``, ``security``, ``server`` (the
command line of ``mt serve`` and ``server.py``).
"""

from .app import DEFAULT_MAX_CHARS, create_app
from .errors import ApiError
from .service import TranslatorService

__all__ = ["ApiError", "DEFAULT_MAX_CHARS", "TranslatorService", "create_app"]
