"""SPP-SCL: two-step semi-push-pull supervised contrastive learning (mmalign plugin)."""
