"""``save`` / ``load``: state dicts and checkpoints as ``.npz`` files, never pickle.

File layout: a zip archive with one ``.npy`` member per array, named by its path in the saved
object (``"fc.weight"`` for a flat state dict, ``"optim/state/0/exp_avg"`` for nested dicts and
lists, joined with ``/``), so ``numpy.load(path)["fc.weight"]`` works too. One extra member,
``__minirnn__``, holds a JSON description of the structure: dicts, lists, tuples, ``None``,
bools, ints, floats and strings appear in it directly, each array as ``{"__ndarray__": member}``.
Loading uses ``allow_pickle=False`` and ``json``; neither can run code. Files without the
``__minirnn__`` member (any plain ``.npz``) load as a flat dict of arrays, each member under its
name less one ``.npy`` suffix.

Keys. Every dict key that is a non-empty string without ``/`` and without a leading ``__`` round
trips exactly, whatever its characters. The JSON description holds the keys themselves; the member
name is only a pointer, read back by its exact name, so ``"x"`` (member ``x.npy``) and ``"x.npy"``
(member ``x.npy.npy``) stay two arrays. A path that a zip member name cannot carry unchanged -- a
NUL (zip readers cut the name there), a lone surrogate (not UTF-8), a backslash (read as ``/`` on
Windows), more than 64 KiB -- is stored under a private member name ``__minirnn__/<n>`` instead;
only ``numpy.load`` sees that name. The refused keys are the ones the format needs: ``/`` joins
the path, a leading ``__`` marks the format's own entries, and non-string keys would come back as
strings. Nesting deeper than :data:`MAX_DEPTH` is refused by ``save`` and by ``load``.

Memory. Before allocating anything ``load`` checks every member's declared sizes: a stored member
must fit in the file, its ``.npy`` header's shape x itemsize must equal the bytes it holds, and the
arrays together may declare at most ``max_bytes`` (default: the larger of 1 GiB and 16 times the
file's size, so a file written by ``save`` -- never compressed -- always loads, while a compressed
"zip bomb" that inflates 1000-fold is refused before it is inflated).

Files. ``save`` writes a temporary ``.minirnn-<pid>-<random>.tmp`` beside the target, fsyncs it,
renames it over the target and fsyncs the directory. A new file gets the mode ``open()`` would
give it (0666 less the umask); an overwritten one keeps its mode. The writer holds an exclusive
``flock`` on its temporary; each save first deletes the temporaries in its directory that are
unlocked and whose writer is gone (its pid is dead, or is this process's but not one of its
current saves, or the file is older than :data:`STALE_AFTER_S`), so a save killed with ``kill -9``
leaves its temporary only until the next save there. A live writer's temporary is never deleted.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import secrets
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import IO, Any, cast

import numpy as np

from .tensor import Tensor

try:
    import fcntl
except ImportError:  # Windows: no flock, so stale temporaries are never guessed at
    fcntl = None  # type: ignore[assignment]

META = "__minirnn__"
FORMAT_VERSION = 1
_SEP = "/"
MAX_DEPTH = 100  # nesting of dicts, lists and tuples that save writes and load reads
DEFAULT_MAX_BYTES = 1 << 30  # load's floor for the bytes the arrays may declare
INFLATE_FACTOR = 16  # ... and the default multiple of the file's size allowed above the floor
STALE_AFTER_S = 600.0  # an unlocked temporary this old is stale even if its pid is in use again
_MAX_MEMBER_NAME = 0xFFFF - len(".npy")  # a zip name's length field is 16 bits
_CHUNK = 1 << 20


# -- save: the JSON skeleton and the member names


def _portable(name: str) -> bool:
    """Whether ``name`` survives as a zip member name, read back the same on every platform."""
    if "\0" in name or "\\" in name:
        return False
    try:
        return len(name.encode("utf-8")) <= _MAX_MEMBER_NAME
    except UnicodeEncodeError:
        return False


def _member_name(path: str, arrays: Mapping[str, np.ndarray]) -> str:
    """The member name (less ``.npy``) for the array at ``path``: the path itself when a zip can
    carry it, otherwise a private name that no path can take (paths never start with ``__``)."""
    return path if _portable(path) else f"{META}{_SEP}{len(arrays)}"


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not key or _SEP in key or key.startswith("__"):
        raise ValueError(f"save: {where}: expected keys that are non-empty strings without "
                         f"'{_SEP}' or a leading '__', got {key!r}")


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    """A JSON-able skeleton of ``obj``; arrays are moved into ``arrays`` under their member name."""
    where = path or "<root>"
    if depth > MAX_DEPTH:
        raise ValueError(f"save: {where[:200]}: nested more than {MAX_DEPTH} deep (load refuses deeper)")
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"save: {where}: expected an array of numbers, got dtype object "
                            f"(object arrays would need pickle)")
        name = _member_name(path, arrays)
        arrays[name] = obj
        return {"__ndarray__": name}
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            _check_key(key, where)
            out[key] = _encode(value, f"{path}{_SEP}{key}" if path else key, arrays, depth + 1)
        return out
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{path}{_SEP}{i}" if path else str(i), arrays, depth + 1)
                 for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, np.generic):
        return _encode(np.asarray(obj), path, arrays, depth)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: {where}: expected dicts, lists, tuples, arrays, numbers, strings or None, "
                    f"got {type(obj).__name__}")


def _write_archive(f: IO[bytes], meta: str, arrays: Mapping[str, np.ndarray]) -> None:
    """The zip archive itself: the description, then one uncompressed ``.npy`` member per array."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
        for name, array in [(META, np.array(meta)), *arrays.items()]:
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def save(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a state dict or nested checkpoint dict to ``path`` (a ``.npz`` zip; see module doc).

    Arrays are stored byte for byte (dtype and shape kept); Tensors are saved as their arrays.
    The file is written to a temporary name, synced and renamed, so a crash or power cut leaves
    the old file or the new one, never half a file; see the module doc for modes and temporaries.
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a dict (e.g. a state_dict), got {type(obj).__name__}")
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _encode(obj, "", arrays)
    meta = json.dumps({"format": FORMAT_VERSION, "root": skeleton}, allow_nan=True)
    _write_atomically(path, lambda f: _write_archive(f, meta, arrays))


# -- save: temporaries, modes and syncing

_TEMP_NAME = re.compile(r"\.minirnn-(\d{1,10})-\w+\.tmp")
_ACTIVE: set[str] = set()  # this process's temporaries being written now (any thread)


def _write_atomically(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Run ``write`` on a synced temporary beside ``path``, then rename it to ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(directory)
    tmp, fd = _create_temporary(directory)
    try:
        with os.fdopen(fd, "wb") as f:  # closed (and unlocked) only after the rename
            _keep_mode(f.fileno(), path)
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    finally:
        _ACTIVE.discard(tmp)
    _fsync_directory(directory)


def _create_temporary(directory: str) -> tuple[str, int]:
    """A new, locked ``.minirnn-<pid>-<random>.tmp`` in ``directory``, created with mode 0666 so
    that the kernel applies the umask (and any default ACL) exactly as for ``open()``."""
    tmp = os.path.join(directory, f".minirnn-{os.getpid()}-{secrets.token_hex(8)}.tmp")
    _ACTIVE.add(tmp)  # before the file exists, so this process's cleaner never takes it
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except BaseException:
        _ACTIVE.discard(tmp)
        raise
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # no locks on this filesystem: cleaners cannot lock it either, so keep it
            pass
    return tmp, fd


def _keep_mode(fd: int, path: str) -> None:
    """Give the temporary the mode of the file it will replace, if there is one."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable, where the OS lets a directory be opened and synced."""
    if os.name == "posix":
        _on_open_file(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0), lambda fd: os.fsync(fd))


def _on_open_file(path: str, flags: int, action: Callable[[int], None]) -> None:
    """``action(fd)`` on ``path`` opened with ``flags``; an OSError on the way skips the rest
    (syncing a directory and removing stale temporaries are both best effort)."""
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        action(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temporaries(directory: str) -> None:
    """Delete the temporaries in ``directory`` that an earlier, killed save left behind."""
    if fcntl is None:
        return
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match:
            _remove_if_stale(os.path.join(directory, name), int(match.group(1)))


def _remove_if_stale(tmp: str, pid: int) -> None:
    """Delete ``tmp`` if no writer holds its lock and its writer is gone (see the module doc)."""
    if tmp not in _ACTIVE:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        _on_open_file(tmp, flags, lambda fd: _unlink_if_unlocked(tmp, fd, pid))


def _unlink_if_unlocked(tmp: str, fd: int, pid: int) -> None:
    """Unlink ``tmp`` (open as ``fd``) if its lock is free and its writer ``pid`` is gone."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while a writer holds it
    if pid == os.getpid() or not _alive(pid) or time.time() - os.fstat(fd).st_mtime > STALE_AFTER_S:
        os.unlink(tmp)


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- load


class _Refused(ValueError):
    """A file that our own checks refuse; its message already says what is wrong."""


# A zip archive starts with a local file header (an empty one with its end record); numpy's
# own .npy format with its magic string.
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
# zipfile raises NotImplementedError / RuntimeError for a damaged header that claims an
# unsupported zip version or encryption.
_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, struct.error,
                NotImplementedError, RuntimeError)


def _check_signature(path: str, head: bytes) -> None:
    """Refuse, before numpy sees it, a file that is neither a zip archive nor an .npy array.

    numpy would take such a file for a pickle and say so, with advice to load it with
    ``allow_pickle=True``: advice that a checkpoint loader must never give.
    """
    if head == _NPY_MAGIC:
        raise _Refused("expected an .npz archive, got a single ndarray (an .npy file)")
    if not head.startswith(_ZIP_SIGNATURES):
        raise ValueError(f"load: {path!r} is not an .npz archive: a zip file starts with b'PK', "
                         f"this one with {head[:4]!r}")


def _byte_limit(max_bytes: int | None, file_size: int) -> int:
    """The most bytes the arrays of a file of ``file_size`` bytes may declare."""
    if max_bytes is None:
        return max(DEFAULT_MAX_BYTES, INFLATE_FACTOR * file_size)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise TypeError(f"load: max_bytes: expected an int or None, got {type(max_bytes).__name__}")
    if max_bytes < 0:
        raise ValueError(f"load: max_bytes: expected a number of bytes >= 0, got {max_bytes}")
    return max_bytes


def _check_member(info: zipfile.ZipInfo, file_size: int) -> None:
    """Refuse a member whose declared sizes cannot be true of this file."""
    if info.compress_size > file_size:
        raise _Refused(f"member {info.filename!r} declares {info.compress_size} bytes of data, "
                       f"more than the whole file ({file_size} bytes)")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise _Refused(f"member {info.filename!r} is stored uncompressed in {info.compress_size} bytes "
                       f"but declares {info.file_size}")


def _members(archive: zipfile.ZipFile, limit: int, file_size: int) -> dict[str, zipfile.ZipInfo]:
    """Each array's name (its member name less one ``.npy``) and member, all sizes checked."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name in members:
            raise _Refused(f"the array {name!r} is stored more than once (members "
                           f"{members[name].filename!r} and {info.filename!r})")
        _check_member(info, file_size)
        members[name] = info
    declared = sum(info.file_size for info in members.values())
    if declared > limit:
        raise _Refused(f"its arrays declare {declared} bytes, more than the limit of {limit} bytes "
                       f"(by default the larger of {DEFAULT_MAX_BYTES} and {INFLATE_FACTOR} times the "
                       f"file's size); pass load(..., max_bytes=...) to allow more")
    return members


def _read_header(stream: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, Fortran order and dtype from an ``.npy`` header (at most 10000 bytes)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    impl = getattr(np.lib, "_format_impl", np.lib.format)  # version 3.0: no public reader
    return impl._read_array_header(stream, version)


def _check_shape(info: zipfile.ZipInfo, shape: tuple[int, ...], dtype: np.dtype, held: int) -> None:
    """Refuse a header whose array is not exactly the ``held`` bytes that follow it."""
    if dtype.hasobject:
        raise _Refused(f"member {info.filename!r} holds Python objects (dtype {dtype}), "
                       f"which only pickle could load")
    if any(n < 0 for n in shape):
        raise _Refused(f"member {info.filename!r} declares the negative shape {shape}")
    need = math.prod(shape) * dtype.itemsize
    if need != held:
        raise _Refused(f"member {info.filename!r} declares shape {shape} of {dtype} ({need} bytes) "
                       f"but holds {held} bytes of array data")


def _read_data(stream: io.BufferedIOBase, dtype: np.dtype, count: int) -> np.ndarray:
    """``count`` elements read in chunks straight into a new array (sizes already checked)."""
    array = np.ndarray(count, dtype=dtype)  # np.empty mishandles zero-width string dtypes
    if array.nbytes:
        view = memoryview(array.view(np.uint8))
        filled = 0
        while filled < len(view):
            got = stream.readinto(view[filled:filled + _CHUNK])
            if not got:
                raise EOFError(f"array data ends after {filled} of {len(view)} bytes")
            filled += got
    return array


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One ``.npy`` member, its header checked against its size before the array is allocated."""
    with archive.open(info) as stream:
        shape, fortran_order, dtype = _read_header(stream)
        _check_shape(info, shape, dtype, info.file_size - stream.tell())
        array = _read_data(cast(io.BufferedIOBase, stream), dtype, math.prod(shape))  # (a zipfile.ZipExtFile)
        if stream.read(1):  # also makes zipfile check the CRC, if the last read did not
            raise _Refused(f"member {info.filename!r} has bytes after its array")
    if fortran_order:
        return array.reshape(shape[::-1]).transpose()
    return array.reshape(shape)


def _read_archive(f: IO[bytes], max_bytes: int | None) -> dict[str, np.ndarray]:
    """Every array of the zip archive in ``f``, by name."""
    file_size = os.fstat(f.fileno()).st_size
    with zipfile.ZipFile(f) as archive:
        members = _members(archive, _byte_limit(max_bytes, file_size), file_size)
        return {name: _read_member(archive, info) for name, info in members.items()}


def _decode(skeleton: Any, arrays: Mapping[str, np.ndarray], depth: int = 0) -> Any:
    """The object that :func:`_encode` made ``skeleton`` of."""
    if depth > MAX_DEPTH:
        raise _Refused(f"its {META} description is nested more than {MAX_DEPTH} deep")
    if isinstance(skeleton, dict):
        if "__ndarray__" in skeleton:
            return arrays[skeleton["__ndarray__"]]
        if "__tuple__" in skeleton:
            return tuple(_decode(v, arrays, depth + 1) for v in list(skeleton["__tuple__"]))
        return {k: _decode(v, arrays, depth + 1) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_decode(v, arrays, depth + 1) for v in skeleton]
    return skeleton


def _describe(path: str, arrays: dict[str, np.ndarray]) -> Any:
    """The saved object, rebuilt from the ``__minirnn__`` description and the arrays."""
    try:
        meta = json.loads(str(arrays.pop(META)[()]))
    except RecursionError as exc:
        raise ValueError(f"load: {path!r}: its {META} description is nested too deeply to read "
                         f"(save writes at most {MAX_DEPTH} levels)") from exc
    except ValueError as exc:
        raise ValueError(f"load: {path!r}: its {META} description is damaged: {exc}") from exc
    try:
        found = meta.get("format") if isinstance(meta, dict) else meta
        if found != FORMAT_VERSION:
            raise ValueError(f"expected format {FORMAT_VERSION}, got {found!r}")
        return _decode(meta["root"], arrays)
    except _Refused as exc:
        raise ValueError(f"load: {path!r}: {exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"load: {path!r}: its {META} description is damaged: {exc}") from exc


def load(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> dict[str, Any]:
    """Read a file written by :func:`save` (or any plain ``.npz``) without executing code.

    ``max_bytes`` caps the bytes that the arrays may declare, checked before anything is inflated
    or allocated; by default the larger of 1 GiB and 16 times the file's size (module doc).
    Raises FileNotFoundError for a missing file and ValueError naming ``path`` and what is wrong
    for a file that is truncated, corrupted (zip CRC mismatch), not an ``.npz``, holds pickled
    objects, declares sizes its data do not have or more than ``max_bytes``, or is nested deeper
    than :data:`MAX_DEPTH`.
    """
    path = os.fspath(path)
    _byte_limit(max_bytes, 0)  # a bad argument is a TypeError/ValueError about it, not the file
    try:
        with open(path, "rb") as f:
            _check_signature(path, f.read(len(_NPY_MAGIC)))
            f.seek(0)
            arrays = _read_archive(f, max_bytes)
    except FileNotFoundError:
        raise
    except _Refused as exc:
        raise ValueError(f"load: {path!r}: {exc}") from exc
    except _READ_ERRORS as exc:
        raise ValueError(f"load: {path!r} is not a readable minirnn/.npz file "
                         f"(truncated, corrupted or pickled?): {exc}") from exc
    if META not in arrays:
        return arrays
    return _describe(path, arrays)
