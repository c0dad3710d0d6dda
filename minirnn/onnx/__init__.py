"""ONNX export and import of minirnn models (needs ``pip install 'minirnn[onnx]'``).

* :func:`export` writes a model made of Embedding, RNN/LSTM/GRU, Linear, Dropout, activations,
  softmax/log_softmax, Sequential and chains of these as an ONNX model (opset 17) that
  onnxruntime runs.
* :func:`load` reads such a model -- or one exported by ``torch.onnx.export`` -- back as a minirnn
  module whose layers are minirnn layers, so it can be trained further.
"""
from __future__ import annotations

try:
    import onnx  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("minirnn.onnx needs the onnx package: pip install 'minirnn[onnx]'") from exc

from .exporter import OPSET, export  # noqa: E402
from .loader import OnnxModule, load  # noqa: E402
from .trace import UnsupportedError  # noqa: E402

__all__ = ["OPSET", "OnnxModule", "UnsupportedError", "export", "load"]
