"""Moved to :mod:`mt.text.segment`: this alias keeps ``mt.segment`` imports working until the final sweep."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mt.text.segment")
