"""The out-of-core feature store: content-keyed, sharded, read by index."""

from mmalign.store.keys import content_key
from mmalign.store.store import DTYPES, FeatureStore, StoredColumn, StoreFormatError, store_dir

__all__ = ["DTYPES", "FeatureStore", "StoreFormatError", "StoredColumn", "content_key", "store_dir"]
