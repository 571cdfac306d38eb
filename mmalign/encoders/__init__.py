"""Encoders: one modality in, :data:`~mmalign.interfaces.Features` out.

Each module does one job; :mod:`mmalign.builtin.encoders` registers the classes.
"""
