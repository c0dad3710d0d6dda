"""``save`` / ``load``: state dicts and checkpoints as ``.npz`` files, never pickle.

File layout: a zip archive with one ``.npy`` member per array, named by its path in the saved
object (``"fc.weight"`` for a flat state dict, ``"optim/state/0/exp_avg"`` for nested dicts and
lists, joined with ``/``), so ``numpy.load(path)["fc.weight"]`` works too. One extra member,
``__minirnn__``, holds a JSON description of the structure: dicts, lists, tuples, ``None``,
bools, ints, floats and strings appear in it directly, each array as ``{"__ndarray__": name}``.
Loading uses ``allow_pickle=False`` and ``json``; neither can run code. Files without the
``__minirnn__`` member (any plain ``.npz``) load as a flat dict of arrays.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .tensor import Tensor

META = "__minirnn__"
FORMAT_VERSION = 1
_SEP = "/"


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able skeleton of ``obj``; arrays are moved into ``arrays`` under their path."""
    where = path or "<root>"
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"save: {where}: expected an array of numbers, got dtype object "
                            f"(object arrays would need pickle)")
        arrays[path] = obj
        return {"__ndarray__": path}
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str) or not key or _SEP in key or key.startswith("__"):
                raise ValueError(f"save: {where}: expected keys that are non-empty strings without "
                                 f"'{_SEP}' or a leading '__', got {key!r}")
            out[key] = _encode(value, f"{path}{_SEP}{key}" if path else key, arrays)
        return out
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{path}{_SEP}{i}" if path else str(i), arrays) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, np.generic):
        return _encode(np.asarray(obj), path, arrays)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: {where}: expected dicts, lists, tuples, arrays, numbers, strings or None, "
                    f"got {type(obj).__name__}")


def _decode(skeleton: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(skeleton, dict):
        if "__ndarray__" in skeleton:
            return arrays[skeleton["__ndarray__"]]
        if "__tuple__" in skeleton:
            return tuple(_decode(v, arrays) for v in skeleton["__tuple__"])
        return {k: _decode(v, arrays) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_decode(v, arrays) for v in skeleton]
    return skeleton


def save(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a state dict or nested checkpoint dict to ``path`` (a ``.npz`` zip; see module doc).

    Arrays are stored byte for byte (dtype and shape kept); Tensors are saved as their arrays.
    The file is written to a temporary name and renamed, so a crash never leaves half a file.
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a dict (e.g. a state_dict), got {type(obj).__name__}")
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _encode(obj, "", arrays)
    meta = json.dumps({"format": FORMAT_VERSION, "root": skeleton}, allow_nan=True)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".minirnn-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
            for name, array in [(META, np.array(meta)), *arrays.items()]:
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# A zip archive starts with a local file header (an empty one with its end record); numpy's
# own .npy format with its magic string.
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def _check_signature(path: str, head: bytes) -> None:
    """Refuse, before numpy sees it, a file that is neither a zip archive nor an .npy array.

    numpy would take such a file for a pickle and say so, with advice to load it with
    ``allow_pickle=True``: advice that a checkpoint loader must never give.
    """
    if not head.startswith(_ZIP_SIGNATURES) and head != _NPY_MAGIC:
        raise ValueError(f"load: {path!r} is not an .npz archive: a zip file starts with b'PK', "
                         f"this one with {head[:4]!r}")


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by :func:`save` (or any plain ``.npz``) without executing code.

    Raises FileNotFoundError for a missing file and ValueError naming ``path`` for a file that
    is truncated, corrupted (zip CRC mismatch), not an ``.npz``, or holds pickled objects.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:  # we own the handle, so it is closed even when numpy fails
            _check_signature(path, f.read(len(_NPY_MAGIC)))
            f.seek(0)
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError(f"expected an .npz archive, got a single {type(loaded).__name__}")
            with loaded as npz:
                arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise
    # zipfile raises NotImplementedError / RuntimeError for a damaged header that claims an
    # unsupported zip version or encryption.
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, struct.error,
            NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"load: {path!r} is not a readable minirnn/.npz file "
                         f"(truncated, corrupted or pickled?): {exc}") from exc
    if META not in arrays:
        return arrays
    try:
        meta = json.loads(str(arrays.pop(META)[()]))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"expected format {FORMAT_VERSION}, got {meta.get('format')!r}")
        return _decode(meta["root"], arrays)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"load: {path!r}: its {META} description is damaged: {exc}") from exc
