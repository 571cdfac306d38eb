"""n-modal InfoNCE late-fusion joint embeddings, trained round-robin or jointly.

Fürer, Bernstein, Rossetto: "A Comparison of Late-fusion Training Strategies for
Quad-modal Joint Embeddings". The losses are plain functions in
:mod:`mmalign_infonce.losses`.
"""
