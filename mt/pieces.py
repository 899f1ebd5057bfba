"""Old import path of mt.engines.marian_pieces; kept until every caller imports the new path."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mt.engines.marian_pieces")
