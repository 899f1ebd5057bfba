"""links layer."""
