"""Reusable built-in components: fusions, heads and objectives any method can use."""
