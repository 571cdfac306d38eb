"""A restricted unpickler for dataset pickles: data in, never code.

``pickle.load`` calls whatever a file names, so a downloaded dataset pickle whose object
has a ``__reduce__`` returning ``os.system`` runs a command the moment it is read. The
MMSA/MulT feature pickles (CMU-MOSI, CMU-MOSEI, UR-FUNNY) hold only dicts, lists,
tuples, strings, numbers and numpy arrays; pickling those refers to the handful of
globals below and nothing else (measured for protocols 0-5 under numpy 1.x and 2.x,
whose array helpers live in ``numpy.core`` and ``numpy._core`` respectively). Every
other global is refused before it is imported, with the file and the global named.
"""

from __future__ import annotations

import collections
import pickle
from typing import Any, BinaryIO

import numpy as np
from numpy._core import multiarray, numeric

_CODECS_ENCODE = __import__("_codecs").encode  # bytes objects in protocols 0-2
ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,  # ndarray.__reduce__
    ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,  # ... under numpy 1.x
    ("numpy._core.multiarray", "scalar"): multiarray.scalar,  # numpy scalars
    ("numpy.core.multiarray", "scalar"): multiarray.scalar,
    ("numpy._core.numeric", "_frombuffer"): numeric._frombuffer,  # protocol-5 arrays
    ("numpy.core.numeric", "_frombuffer"): numeric._frombuffer,
    ("_codecs", "encode"): _CODECS_ENCODE,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
}
# protocols 0-2 spell the builtins module as Python 2 did
ALLOWED.update(
    {("__builtin__", name): obj for (mod, name), obj in list(ALLOWED.items()) if mod == "builtins"}
)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside :data:`ALLOWED` (it could run code)."""


class DataUnpickler(pickle.Unpickler):
    """Resolves only the globals in :data:`ALLOWED`; everything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing global '{module}.{name}': a data pickle holds only dicts, lists, "
                f"strings, numbers and numpy arrays, and loading this one could run code"
            ) from None


def load(fh: BinaryIO) -> Any:
    """Unpickle data only (see :data:`ALLOWED`)."""
    return DataUnpickler(fh).load()

