"""minirnn without its compiled extension (minirnn/_extension.py): one warning, a working tape.

Each case runs in a child process, since the extension is resolved once, when minirnn is imported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# The child: import minirnn (with the extension hidden or failing to import), count the warnings
# about it, then train a little on the tape (matmul, sigmoid, a fused layer, a fused cell) and
# check the gradients against finite differences.
CHILD = r"""
import json, sys, warnings
if sys.argv[1] == "missing":
    sys.modules["minirnn._C"] = None  # what a failed build looks like: `from . import _C` raises ImportError
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import minirnn
    from minirnn import fused, nn, ops  # noqa: F401  (importing more must not warn again)
import numpy as np

rng = np.random.default_rng(0)
x = minirnn.Tensor(rng.standard_normal((4, 2, 3)), requires_grad=True)
lstm, cell = nn.LSTM(3, 5, dtype=np.float64), nn.GRUCell(5, 5, dtype=np.float64)
def loss(x):
    y, _ = lstm(x)
    return (ops.sigmoid(cell(y[-1]) @ lstm.weight_hh_l0[:5])).sum()
try:
    fused.get_backend("c")
    c_error = ""
except RuntimeError as exc:
    c_error = str(exc)
print(json.dumps({
    "warnings": [str(w.message) for w in caught if "minirnn._C" in str(w.message)],
    "categories": sorted({w.category.__name__ for w in caught if "minirnn._C" in str(w.message)}),
    "extension_loaded": sys.modules.get("minirnn._C") is not None,
    "default_backend": fused.get_backend().__name__,
    "c_error": c_error,
    "gradcheck": bool(minirnn.gradcheck(loss, [x])),
    "cell_node": cell(x[0][:, :3] @ minirnn.Tensor(np.ones((3, 5)))).grad_fn.name,
}))
"""


def run_child(how: str) -> dict:
    env = {**os.environ, "MINIRNN_NO_EXTENSION": "1" if how == "hidden" else "0"}
    done = subprocess.run([sys.executable, "-c", CHILD, how], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("how", ["hidden", "missing"])
def test_without_the_extension_one_warning_and_the_tape_still_trains(how: str) -> None:
    got = run_child(how)
    assert len(got["warnings"]) == 1, got["warnings"]
    message = got["warnings"][0]
    assert got["categories"] == ["RuntimeWarning"]
    assert "NumPy" in message and "reference backend" in message
    assert ("MINIRNN_NO_EXTENSION=1" in message) if how == "hidden" else ("pip install -e ." in message)
    assert not got["extension_loaded"]
    assert got["default_backend"] == "minirnn.reference"
    assert "backend 'c'" in got["c_error"] and "backend='reference'" in got["c_error"]
    assert got["gradcheck"]
    assert got["cell_node"] != "FusedCellStep"  # the composed step: its last node is a primitive


@pytest.mark.extension
def test_with_the_extension_no_warning_and_the_fused_paths() -> None:
    got = run_child("present")
    assert got["warnings"] == [] and got["extension_loaded"]
    assert got["default_backend"] == "minirnn._C" and got["c_error"] == ""
    assert got["gradcheck"] and got["cell_node"] == "FusedCellStep"
