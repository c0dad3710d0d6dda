"""Sequence data utilities: padding with lengths and masks, bucketed batching, vocabularies."""
from .batching import BucketBatcher  # noqa: F401
from .padding import pad_sequences  # noqa: F401
from .vocab import CharVocab, WordVocab  # noqa: F401
