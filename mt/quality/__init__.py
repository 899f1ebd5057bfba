"""Quality layer: sentence embeddings (e5) and the per-sentence quality scores built on them."""
