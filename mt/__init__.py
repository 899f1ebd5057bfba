"""Vietnamese→English machine translation and bilingual alignment.

Data flows one way: text → segments (``segment``) → normalised text (``normalize``)
→ cache / model (``cache``, ``translate``) → aligned document (``pipeline``)
→ web view, JSON API and CLI files (``web``, ``cli``).
"""

__version__ = "0.1.0"
