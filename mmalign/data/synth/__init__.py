"""Embedded dataset generators: each writes its counterpart's real on-disk format."""
