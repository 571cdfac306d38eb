"""Disk and memory of ``mmalign run ti-jepa --size large --task mvsa-multi`` at paper
scale (COCO train2017 pretraining, ViT-H/14 and gte-base features, fp16 store).

    python benchmarks/tijepa/paper_scale_estimate.py [--text-tokens 50] [--batch 1024]

Arithmetic over the feature store's layout (``mmalign.store``): one stored item per
distinct input (an image once, however many captions it has), rows padded to the
longest item of their shard, paper mode's preprocessed images decoded per batch and
never stored. Dataset sizes are the public counts; ``--text-tokens`` is the padded
caption length assumed (COCO captions average about 11 words; shards pad to their
longest caption). Prints a JSON document: per-store bytes, the total disk, and the
peak host memory of training (one batch of features, its images, the models).
"""

from __future__ import annotations

import argparse
import json

COCO_IMAGES, COCO_CAPTIONS = 118_287, 591_753  # train2017
MVSA_MULTI_PAIRS = 19_600  # MVSA-Multiple before the label rules drop conflicting pairs
VIT_H_TOKENS, VIT_H_DIM, VIT_H_PARAMS = 256, 1280, 632_000_000  # 224 px / 14 px patches
GTE_DIM, GTE_PARAMS = 768, 137_000_000
TWEET_TOKENS = 64


def item_bytes(tokens: int, dim: int, store: int = 2) -> int:
    """pooled + tokens in the store dtype, plus one mask byte per token."""
    return dim * store + tokens * dim * store + tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--text-tokens", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    image = item_bytes(VIT_H_TOKENS, VIT_H_DIM)
    stores = {
        "coco images (vit-h/14)": COCO_IMAGES * image,
        "coco captions (gte-base)": COCO_CAPTIONS * item_bytes(args.text_tokens, GTE_DIM),
        "mvsa-multi images (vit-h/14)": MVSA_MULTI_PAIRS * image,
        "mvsa-multi texts (gte-base)": MVSA_MULTI_PAIRS * item_bytes(TWEET_TOKENS, GTE_DIM),
    }
    old = COCO_CAPTIONS * (item_bytes(VIT_H_TOKENS, VIT_H_DIM, 4) + 3 * 224 * 224 * 4)
    batch_features = args.batch * (  # gathered batches come back in fp32
        item_bytes(VIT_H_TOKENS, VIT_H_DIM, 4) + item_bytes(args.text_tokens, GTE_DIM, 4))
    batch_images = args.batch * 3 * 224 * 224 * 4  # paper mode: decoded per batch
    models = (VIT_H_PARAMS + GTE_PARAMS) * 4  # fp32 weights while they are loaded
    extraction = 2 * 256 * 2**20  # one shard buffer and its concatenated copy
    peak = 2 * batch_features + 2 * batch_images + models + extraction  # x2: next batch
    print(json.dumps({
        "store_bytes": stores,
        "store_total_gb": round(sum(stores.values()) / 1e9, 1),
        "format_1_cache_in_ram_gb": round(old / 1e9, 1),
        "peak_host_memory_gb": round(peak / 1e9, 1),
        "peak_parts_gb": {
            "features, 2 batches": round(2 * batch_features / 1e9, 2),
            "images, 2 batches": round(2 * batch_images / 1e9, 2),
            "encoder weights": round(models / 1e9, 2),
            "extraction shard buffer": round(extraction / 1e9, 2),
        },
        "assumptions": {"text_tokens": args.text_tokens, "batch": args.batch,
                        "store_dtype": "fp16"},
    }, indent=2))


if __name__ == "__main__":
    main()
