"""TI-JEPA (Vo et al.): text-to-image cross-attention pretrained by joint-embedding
prediction of masked image blocks, probed linearly on image-text sentiment."""
