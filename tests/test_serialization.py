"""save/load: bit-identical round trips, nested checkpoints, and refusal of damaged or pickled files."""
from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minirnn
from minirnn import nn, optim

_UNPICKLED: list[str] = []


def _mark() -> str:
    _UNPICKLED.append("ran")
    return "ran"


class _Payload:
    """Unpickling this calls _mark(): proof that code would run."""

    def __reduce__(self) -> tuple[Any, tuple]:
        return _mark, ()


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "fc.weight": rng.standard_normal((3, 4)).astype(np.float32),
        "fc.bias": rng.standard_normal(4),
        "ids": rng.integers(-2**40, 2**40, size=(2, 5)),
        "small": np.array([1, 2, 3], dtype=np.int32),
        "mask": np.array([True, False]),
        "scalar": np.array(np.float32(np.pi)),
        "empty": np.zeros((0, 3)),
        "strided": rng.standard_normal((4, 6))[:, ::2],
        "big_endian": np.arange(4, dtype=">f8"),
        "special": np.array([np.nan, np.inf, -0.0, 5e-324]),
    }


def _assert_identical(a: np.ndarray, b: np.ndarray) -> None:
    assert isinstance(b, np.ndarray)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.ascontiguousarray(a).tobytes() == b.tobytes()


def test_flat_round_trip_is_bit_identical(tmp_path: Path) -> None:
    arrays = _arrays()
    path = tmp_path / "sd.npz"
    minirnn.save(arrays, path)
    loaded = minirnn.load(path)
    assert list(loaded) == list(arrays)
    for name, array in arrays.items():
        _assert_identical(array, loaded[name])
    with np.load(path) as plain:  # readable by numpy alone, under the same names
        _assert_identical(arrays["fc.weight"], plain["fc.weight"])


def test_nested_checkpoint_round_trip(tmp_path: Path) -> None:
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    checkpoint = {"model": model.state_dict(), "optim": opt.state_dict(), "step": 7, "loss": 0.125,
                  "tag": "run-1", "flags": [True, None, 2.5], "pair": (1, 2), "empty": {}}
    path = str(tmp_path / "ckpt.npz")
    minirnn.save(checkpoint, path)
    loaded = minirnn.load(path)
    assert loaded["step"] == 7 and type(loaded["step"]) is int
    assert loaded["loss"] == 0.125 and loaded["tag"] == "run-1"
    assert loaded["flags"] == [True, None, 2.5] and loaded["pair"] == (1, 2) and loaded["empty"] == {}
    for name, array in checkpoint["model"].items():
        _assert_identical(array, loaded["model"][name])
    restored = optim.Adam(nn.Linear(3, 2).parameters())
    restored.load_state_dict(loaded["optim"])
    assert restored.param_groups[0]["betas"] == (0.8, 0.9)
    state = loaded["optim"]["state"]["0"]
    assert state["step"] == 1
    _assert_identical(checkpoint["optim"]["state"]["0"]["exp_avg"], state["exp_avg"])


def test_module_round_trip_gives_same_outputs(tmp_path: Path) -> None:
    a, b = nn.Linear(4, 3, dtype=np.float64), nn.Linear(4, 3, dtype=np.float64)
    minirnn.save(a.state_dict(), tmp_path / "m.npz")
    b.load_state_dict(minirnn.load(tmp_path / "m.npz"))
    x = minirnn.Tensor(np.random.default_rng(1).standard_normal((2, 4)))
    np.testing.assert_array_equal(a(x).data, b(x).data)


@pytest.mark.parametrize("obj,error,match", [
    ({"x": np.array([1, "a"], dtype=object)}, TypeError, "dtype object"),
    ({"x": {1: np.ones(2)}}, ValueError, "non-empty strings"),
    ({"a/b": np.ones(2)}, ValueError, "without '/'"),
    ({"__minirnn__": 1}, ValueError, "leading '__'"),
    ({"x": object()}, TypeError, "got object"),
    ([np.ones(2)], TypeError, "expected a dict"),
])
def test_save_refuses_unsupported(tmp_path: Path, obj: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        minirnn.save(obj, tmp_path / "bad.npz")
    assert os.listdir(tmp_path) == []  # no file and no temporary left behind


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "ok.npz"
    minirnn.save({"w": np.arange(64, dtype=np.float64)}, path)
    return path


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="ok.npz"):
        minirnn.load(path)


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    offset = data.index(np.float64(33).tobytes())
    data[offset + 7] ^= 0x01  # flip one bit of an array element
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="ok.npz"):
        minirnn.load(path)


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz.* is not an .npz archive") as refused:
        minirnn.load(junk)
    assert "allow_pickle" not in str(refused.value)  # numpy's advice to load it unsafely is not passed on
    for content in (b"", b"PK"):  # empty, and shorter than any header
        junk.write_bytes(content)
        with pytest.raises(ValueError, match="junk.npz"):
            minirnn.load(junk)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match="single .*ndarray"):
        minirnn.load(single)
    with pytest.raises(FileNotFoundError):
        minirnn.load(tmp_path / "missing.npz")


def test_pickled_payload_is_refused_and_never_run(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.ones(2), evil=np.array([_Payload()], dtype=object))
    _UNPICKLED.clear()
    with pytest.raises(ValueError, match="evil.npz"):
        minirnn.load(path)
    assert _UNPICKLED == []
    np.load(path, allow_pickle=True)["evil"]  # the payload is live: loading with pickle runs it
    assert _UNPICKLED == ["ran"]


def test_raw_pickle_file_is_refused_and_never_run(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"w": _Payload()}))
    _UNPICKLED.clear()
    with pytest.raises(ValueError, match="evil.npz.* is not an .npz archive") as refused:
        minirnn.load(path)
    assert "allow_pickle" not in str(refused.value) and _UNPICKLED == []
    with path.open("rb") as f:
        pickle.load(f)  # the payload is live: unpickling runs it
    assert _UNPICKLED == ["ran"]


def test_plain_npz_loads_as_flat_dict(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.arange(3), b=np.eye(2, dtype=np.float32))
    loaded = minirnn.load(path)
    assert sorted(loaded) == ["a", "b"]
    _assert_identical(np.eye(2, dtype=np.float32), loaded["b"])


def test_every_truncation_and_every_flipped_byte_is_refused_or_harmless(tmp_path: Path) -> None:
    """Damage anywhere in the file: load raises ValueError, or (a flip in a byte nobody reads,
    such as a timestamp) returns exactly what was saved -- never other data, never another error."""
    saved = {"w": np.arange(6, dtype=np.float64).reshape(2, 3), "nested": {"i": np.array([1, 2], np.int32)},
             "step": 3}
    path = tmp_path / "f.npz"
    minirnn.save(saved, path)
    data = path.read_bytes()
    damaged = [data[:n] for n in range(len(data))]
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x80 if i % 2 else 0x01
        damaged.append(bytes(flipped))
    refused = 0
    for k, blob in enumerate(damaged):
        path.write_bytes(blob)
        try:
            loaded = minirnn.load(path)
        except ValueError as exc:
            assert "f.npz" in str(exc), (k, exc)
            refused += 1
            continue
        assert loaded["step"] == 3 and set(loaded) == set(saved), k
        _assert_identical(saved["w"], loaded["w"])
        _assert_identical(saved["nested"]["i"], loaded["nested"]["i"])
    assert refused > 0.8 * len(damaged)


# Keys that a zip member name cannot hold as they are (a NUL, a lone surrogate, a backslash that
# Windows reads as '/', a name longer than the zip's 64 KiB field) or that numpy's lookup confuses
# ("x" is stored as "x.npy", so "x.npy" -- stored as "x.npy.npy" -- looks like "x" to numpy).
_AWKWARD_KEYS = ["x", "x.npy", "x.npy.npy", "a\0b", "a\0", "\0", "\ud800", "back\\slash", "é.npy",
                 "k" * 70_000, ".", "..", " ", "line\nbreak", "0"]


def _distinct_arrays(keys: list[str], start: int) -> dict[str, np.ndarray]:
    return {key: np.full(2, start + i, dtype=np.int64) for i, key in enumerate(keys)}


def test_every_string_key_round_trips_without_mixing_arrays(tmp_path: Path) -> None:
    flat = _distinct_arrays(_AWKWARD_KEYS, 0)
    nested = {**flat, "n": _distinct_arrays(_AWKWARD_KEYS, 100),
              "l": [_distinct_arrays(_AWKWARD_KEYS, 200), {"x": {"x.npy": np.ones(1)}}]}
    path = tmp_path / "keys.npz"
    minirnn.save(nested, path)
    loaded = minirnn.load(path)
    assert list(loaded) == list(nested)
    for key in _AWKWARD_KEYS:
        _assert_identical(nested[key], loaded[key])
        _assert_identical(nested["n"][key], loaded["n"][key])
        _assert_identical(nested["l"][0][key], loaded["l"][0][key])
    _assert_identical(np.ones(1), loaded["l"][1]["x"]["x.npy"])
    with np.load(path) as plain:  # ordinary keys keep their numpy-visible names
        _assert_identical(flat["x"], plain["x"])
        _assert_identical(nested["n"]["0"], plain["n/0"])


def test_plain_npz_with_npy_suffixed_name_loads_each_array(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, **{"x": np.zeros(2), "x.npy": np.ones(3)})  # members "x.npy" and "x.npy.npy"
    loaded = minirnn.load(path)
    assert sorted(loaded) == ["x", "x.npy"]
    _assert_identical(np.zeros(2), loaded["x"])
    _assert_identical(np.ones(3), loaded["x.npy"])


def _write_members(path: Path, members: list[tuple[str, np.ndarray]]) -> None:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name, then writes it
        for name, array in members:
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array)
            archive.writestr(name, buffer.getvalue())


@pytest.mark.parametrize("names", [("w.npy", "w.npy"), ("w", "w.npy")])
def test_ambiguous_member_names_are_refused(tmp_path: Path, names: tuple[str, str]) -> None:
    path = tmp_path / "dup.npz"
    _write_members(path, [(names[0], np.zeros(2)), (names[1], np.ones(2))])
    with pytest.raises(ValueError, match="dup.npz.*'w'.*more than once"):
        minirnn.load(path)
