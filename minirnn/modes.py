"""The recurrent modes and the float dtypes: the one table the layers, the reference, the
benchmarks and the ONNX layout read (csrc/rnn.cpp keeps its own ``num_gates`` and
``parse_mode``; tests/test_modes.py holds the two to this table).

A mode names one single-direction recurrent cell; its family says which gates it has:

* ``rnn_tanh``, ``rnn_relu``: Elman, ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``;
  ``rnn_sigmoid`` the same with a sigmoid (the lectures' Elman network; PyTorch has no such mode).
* ``lstm``: gates i f g o and a cell state c.
* ``gru``: gates r z n, the reset gate scaling ``h_{t-1} W_hn^T + b_hn`` (PyTorch's, Keras'
  reset_after=True); ``gru_reset_before``: the reset gate scaling h before ``W_hn`` (Cho et al.
  2014, Keras' reset_after=False, ``nn.GRU(reset_after=False)``; PyTorch has no such mode).

Only NumPy is imported here, so this module loads without the compiled extension.
"""
from __future__ import annotations

import numpy as np

#: mode -> its family: "elman", "lstm" or "gru".
FAMILY = {"rnn_tanh": "elman", "rnn_relu": "elman", "rnn_sigmoid": "elman", "lstm": "lstm", "gru": "gru",
          "gru_reset_before": "gru"}
#: Gates per hidden unit, by family: the row blocks of ``w_ih``/``w_hh`` (G*H, ...).
FAMILY_GATES = {"elman": 1, "lstm": 4, "gru": 3}
#: Gates per hidden unit, by mode.
NUM_GATES = {mode: FAMILY_GATES[family] for mode, family in FAMILY.items()}
#: ``nonlinearity`` of nn.RNN / nn.RNNCell -> its mode.
ELMAN_MODES = {"tanh": "rnn_tanh", "relu": "rnn_relu", "sigmoid": "rnn_sigmoid"}
#: The lectures' variants PyTorch lacks -> the PyTorch mode each one varies.
VARIANTS = {"rnn_sigmoid": "rnn_tanh", "gru_reset_before": "gru"}

#: The dtypes that hold gradients and that the kernels and the fused layers compute in.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
