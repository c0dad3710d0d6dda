"""save/load: memory bounded before allocating (issue 24, item 5) and files written like open()
would, synced, with no temporaries left behind by a killed save (issue 24, item 6)."""
from __future__ import annotations

import io
import os
import re
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import minirnn

# -- item 5: declared sizes are checked against the file and a limit before anything is allocated


def _npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _zip_bytes(name: str, data: bytes, method: int, size: int, crc: int) -> bytes:
    """A one-member zip archive written by hand, so that its declared sizes can be anything."""
    encoded = name.encode()
    local = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, method, 0, 33, crc, len(data), size,
                        len(encoded), 0) + encoded
    central = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, method, 0, 33, crc, len(data),
                          size, len(encoded), 0, 0, 0, 0, 0, 0) + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    return local + data + central + end


def _zero_bomb(header: bytes, zero_blocks: int, block: int = 16 << 20) -> tuple[bytes, int, int]:
    """A raw deflate stream of ``header`` then ``zero_blocks`` blocks of zeros, built without
    compressing them all (after a full flush every block compresses to the same bytes)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(block)
    body = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    for _ in range(zero_blocks):
        crc = zlib.crc32(zeros, crc)
    return head + body * zero_blocks + compressor.flush(), len(header) + zero_blocks * block, crc


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


def test_deflate_bomb_is_refused_before_inflating(tmp_path: Path, traced: None) -> None:
    blocks = 128  # 2 GiB of zeros in a file of about 2 MB
    header = _npy_header("|u1", (blocks << 24,))
    data, size, crc = _zero_bomb(header, blocks)
    path = tmp_path / "bomb.npz"
    path.write_bytes(_zip_bytes("w.npy", data, zipfile.ZIP_DEFLATED, size, crc))
    assert path.stat().st_size < 3 << 20
    with pytest.raises(ValueError, match=r"bomb.npz.*2147483\d\d\d bytes.*max_bytes"):
        minirnn.load(path)
    assert tracemalloc.get_traced_memory()[1] < 64 << 20  # nothing near 2 GiB was ever allocated


def test_inflation_limit_is_a_keyword(tmp_path: Path) -> None:
    header = _npy_header("|u1", (1 << 24,))
    data, size, crc = _zero_bomb(header, 1)
    path = tmp_path / "zeros.npz"
    path.write_bytes(_zip_bytes("w.npy", data, zipfile.ZIP_DEFLATED, size, crc))
    assert path.stat().st_size < 1 << 16
    assert minirnn.load(path)["w"].shape == (1 << 24,)  # 16 MiB from 16 KiB is under the default
    with pytest.raises(ValueError, match=r"zeros.npz.*16777\d\d\d bytes.*limit of 1048576"):
        minirnn.load(path, max_bytes=1 << 20)
    for bad in (-1, 1.5, "big"):
        with pytest.raises((TypeError, ValueError), match="max_bytes"):
            minirnn.load(path, max_bytes=bad)


@pytest.mark.parametrize("shape", [(10**11,), (10**6, 10**6), (2, -3)])
def test_huge_or_negative_npy_header_is_a_value_error(tmp_path: Path, traced: None,
                                                      shape: tuple[int, ...]) -> None:
    member = _npy_header("<f8", shape) + bytes(48)
    path = tmp_path / "huge.npz"
    path.write_bytes(_zip_bytes("w.npy", member, zipfile.ZIP_STORED, len(member), zlib.crc32(member)))
    with pytest.raises(ValueError, match=r"huge.npz.*'w.npy'.*shape"):
        minirnn.load(path)
    assert tracemalloc.get_traced_memory()[1] < 64 << 20


def _zip_claiming(name: str, data: bytes, method: int, compressed: int, size: int) -> bytes:
    """``_zip_bytes`` with the member's compressed size overwritten in both of its headers."""
    blob = bytearray(_zip_bytes(name, data, method, size, zlib.crc32(data)))
    central = blob.index(b"PK\x01\x02")
    struct.pack_into("<L", blob, 18, compressed)
    struct.pack_into("<L", blob, central + 20, compressed)
    return bytes(blob)


@pytest.mark.parametrize("method,compressed,size", [
    (zipfile.ZIP_STORED, None, 2**32 - 1),  # stored, yet 4 GB uncompressed from a few bytes
    (zipfile.ZIP_DEFLATED, 2**32 - 1, 2**20),  # more compressed data than the whole file
])
def test_declared_member_size_beyond_the_file_is_refused(tmp_path: Path, method: int,
                                                         compressed: int | None, size: int) -> None:
    member = _npy_header("<f8", (10**11,))
    path = tmp_path / "liar.npz"
    path.write_bytes(_zip_claiming("w.npy", member, method, compressed or len(member), size))
    with pytest.raises(ValueError, match=r"liar.npz.*'w.npy'.*declares"):
        minirnn.load(path)


def test_trailing_bytes_after_the_array_are_refused(tmp_path: Path) -> None:
    member = _npy_header("<f8", (3,)) + np.arange(3.0).tobytes() + b"hidden"
    path = tmp_path / "extra.npz"
    path.write_bytes(_zip_bytes("w.npy", member, zipfile.ZIP_STORED, len(member), zlib.crc32(member)))
    with pytest.raises(ValueError, match=r"extra.npz.*'w.npy'.*shape"):
        minirnn.load(path)


def _deep(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [900, 100_000])
def test_deeply_nested_description_is_a_value_error(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.npz"
    np.savez(path, __minirnn__=np.array('{"format": 1, "root": ' + _deep(depth) + "}"))
    with pytest.raises(ValueError, match=r"deep.npz.*nest"):
        minirnn.load(path)


def test_save_refuses_nesting_that_load_would_refuse(tmp_path: Path) -> None:
    obj: dict = {"w": np.ones(1)}
    for _ in range(2000):
        obj = {"a": obj}
    with pytest.raises(ValueError, match="nest"):
        minirnn.save(obj, tmp_path / "deep.npz")
    assert os.listdir(tmp_path) == []


# -- item 6: file modes, fsync, and temporaries of killed saves


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_new_file_mode_follows_the_umask(tmp_path: Path, umask: int, expected: int) -> None:
    old = os.umask(umask)
    try:
        minirnn.save({"w": np.ones(2)}, tmp_path / "m.npz")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert _mode(tmp_path / "m.npz") == expected == _mode(tmp_path / "plain")


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_overwritten_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    minirnn.save({"w": np.ones(2)}, path)
    os.chmod(path, 0o604)
    minirnn.save({"w": np.zeros(2)}, path)
    assert _mode(path) == 0o604
    _ = minirnn.load(path)["w"]


def test_temporary_is_synced_before_the_rename_and_the_directory_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    minirnn.save({"w": np.ones(2)}, tmp_path / "m.npz")
    assert events[:2] == ["file", "replace"]
    if os.name == "posix":
        assert events[2:] == ["dir"]


_CHILD = """
import os, sys, time
import numpy as np
import minirnn
def stall(src, dst):  # the save has written and synced its temporary: stop here until killed
    open(sys.argv[2], "w").close()
    time.sleep(600)
os.replace = stall
minirnn.save({"w": np.ones(1000)}, os.path.join(sys.argv[1], "child.npz"))
"""

_TEMP = re.compile(r"\.minirnn-(\d+)-.*\.tmp")


def _temporaries(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if _TEMP.fullmatch(name))


@pytest.mark.skipif(os.name != "posix", reason="kill -9")
def test_temporary_of_a_killed_save_is_removed_by_the_next_save(tmp_path: Path) -> None:
    ready = tmp_path.parent / f"{tmp_path.name}-ready"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the child never reached the rename"
            time.sleep(0.05)
        [left] = _temporaries(tmp_path)
        assert _TEMP.fullmatch(left).group(1) == str(child.pid)
        minirnn.save({"w": np.ones(1)}, tmp_path / "mine.npz")
        assert _temporaries(tmp_path) == [left]  # the writer is alive: its temporary is kept
    finally:
        child.kill()
        child.wait()
    minirnn.save({"w": np.ones(1)}, tmp_path / "mine.npz")
    assert _temporaries(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["mine.npz"]


@pytest.mark.skipif(os.name != "posix", reason="process ids")
def test_only_stale_temporaries_in_the_target_directory_are_removed(tmp_path: Path) -> None:
    ours = tmp_path / f".minirnn-{os.getpid()}-stale.tmp"  # left by an earlier process with our pid
    others = [tmp_path / ".minirnn-notes.tmp", tmp_path / "x.tmp", tmp_path / ".minirnn-12-x.txt"]
    live = tmp_path / f".minirnn-{os.getppid()}-live.tmp"  # a live process's, recent: kept
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    away = elsewhere / f".minirnn-{os.getpid()}-away.tmp"
    for path in (ours, live, away, *others):
        path.write_bytes(b"x")
    minirnn.save({"w": np.ones(1)}, tmp_path / "m.npz")
    assert not ours.exists()
    assert live.exists() and away.exists() and all(path.exists() for path in others)
