"""Moved to mt.io.folder_batch; this alias keeps the old import path working until the final sweep."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("mt.io.folder_batch")
