"""Old import path of mt.engines.request_queue; kept until every caller imports the new path."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mt.engines.request_queue")
