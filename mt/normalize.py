"""Moved to :mod:`mt.text.normalize`: this alias keeps ``mt.normalize`` imports working until the final sweep."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("mt.text.normalize")
