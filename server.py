"""Serve the page and the HTTP API: ``python server.py --help`` (the same as ``mt serve``).

The server lives in :mod:`mt.web.server`; this file keeps ``python server.py`` and gunicorn's
``server:app`` (an app built from the MT_* environment variables, the model loaded on first use).
"""

import sys

from mt.web.server import main, wsgi_app


def __getattr__(name: str):
    if name == "app":
        return wsgi_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
