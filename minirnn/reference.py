"""A plain-NumPy recurrent layer: backpropagation through time, written to be read.

This module has exactly the interface of the fused C++ kernels in ``minirnn._C``::

    rnn_forward(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, need_workspace=True)
        -> (y, h_n, c_n, saved)
    rnn_backward(saved, dy, dh_n, dc_n, gate_grads=False, dh_steps=None)
        -> (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0)

so it serves three purposes: the oracle the kernels are tested against, the NumPy peer in the
benchmarks, and the teaching text of BPTT. It follows the same recipe as the kernels: one GEMM
for the input projection of all steps, a recurrent GEMM plus a pointwise pass per step, and the
weight gradients as GEMMs over all steps after the backward loop.

Legend: T time steps, B batch, I input features, H hidden units, G gates per unit
(1 for ``rnn_tanh``/``rnn_relu``/``rnn_sigmoid``, 4 for ``lstm``: i f g o, 3 for ``gru`` and
``gru_reset_before``: r z n).
Layout and gate order are PyTorch's: ``x`` (T, B, I), ``w_ih`` (G*H, I), ``w_hh`` (G*H, H),
``b_ih``/``b_hh`` (G*H,) or both None, ``h0``/``c0`` (B, H) (``c0`` for lstm only, else None).

Per step, with ``a_t = x_t W_ih^T + b_ih`` and ``r_t = h_{t-1} W_hh^T + b_hh`` (both (B, G*H)):

* Elman:  ``h_t = tanh(a_t + r_t)`` (or relu, or sigmoid: the lectures' Elman network).
* LSTM:   ``i, f, g, o = sigmoid, sigmoid, tanh, sigmoid`` of the four H-wide slices of
  ``a_t + r_t``;  ``c_t = f * c_{t-1} + i * g``;  ``h_t = o * tanh(c_t)``.
* GRU:    ``r = sigmoid(a_r + r_r)``, ``z = sigmoid(a_z + r_z)``,
  ``n = tanh(a_n + r * r_n)``;  ``h_t = (1 - z) * n + z * h_{t-1}`` (PyTorch's, Keras' reset_after=True).
* ``gru_reset_before`` (Cho et al. 2014, Keras' reset_after=False): r and z as GRU, then
  ``n = tanh(a_n + (r * h_{t-1}) W_hn^T + b_hn)``;  ``h_t = (1 - z) * n + z * h_{t-1}``: the product
  with ``W_hn`` waits for the reset gate, so ``r_t`` covers the r and z gates only.

Variable lengths: with ``lengths`` (B,) int64 in [0, T] (any order), sequence b takes part in
steps ``t < lengths[b]`` only. Past its end its state is carried unchanged and its output is
zero, so ``y`` (T, B, H) is zero where ``t >= lengths[b]`` and ``h_n``/``c_n`` hold the state
after its own last step (``h0``/``c0`` when its length is 0).

Forward hands backward a :class:`SavedLayer`: the arguments it checked, and the workspace, one 1-D
array holding all that backward needs (see :func:`workspace_views`): the activated gates of every
step, plus for lstm the cell states, for gru ``r_n`` (the recurrent part of the n gate, which the
reset gate multiplies), for gru_reset_before ``r * h_{t-1}``, and every step's ``h_{t-1}``. The
workspace's layout is this module's own (the kernels' differs): to a caller the saved state is
opaque, handed from forward to backward, which checks only the gradients it adds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, cast

import numpy as np

from .checks import check_array, check_forward_args
from .modes import FAMILY, NUM_GATES

Arrays = tuple[np.ndarray, ...]


# ---------------------------------------------------------------------------- saved state
@dataclass(frozen=True)
class SavedLayer:
    """What a forward hands its backward: the layer's arguments, checked, and the workspace.

    Opaque to callers (as the kernels' ``minirnn._C.SavedLayer``); ``w_hr`` is the projected LSTM's
    (None otherwise). ``arrays`` are those it holds but ``lengths`` (what the tape counts as the
    node's saved bytes), ``nbytes`` their bytes.
    """

    mode: str
    x: np.ndarray
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray | None
    b_hh: np.ndarray | None
    h0: np.ndarray
    c0: np.ndarray | None
    lengths: np.ndarray | None
    workspace: np.ndarray
    w_hr: np.ndarray | None = None

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        held = (self.x, self.w_ih, self.w_hh, self.w_hr, self.b_ih, self.b_hh, self.h0, self.c0, self.workspace)
        return tuple(a for a in held if a is not None)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


def _check_saved(saved: Any, forward: str) -> SavedLayer:
    """``saved`` if it is a :class:`SavedLayer` made by ``forward`` ("rnn_forward" or
    "lstm_proj_forward"), else TypeError/ValueError naming ``saved``."""
    if not isinstance(saved, SavedLayer):
        when = " (need_workspace=True)" if forward == "rnn_forward" else ""  # (lstm_proj_forward always saves)
        raise TypeError(f"rnn: saved: expected the SavedLayer returned by {forward}{when}, got {type(saved).__name__}")
    made_by = "rnn_forward" if saved.w_hr is None else "lstm_proj_forward"
    if made_by != forward:
        raise ValueError(f"rnn: saved: expected the SavedLayer returned by {forward}, got one returned by {made_by}")
    return saved


# ---------------------------------------------------------------------------- workspace
def _extra_slots(mode: str) -> int:
    """(T, B, H) arrays kept beside the gates: lstm the cell states c_t, gru r_n, gru_reset_before r * h."""
    return 0 if FAMILY[mode] == "elman" else 1


def _h_gates(mode: str, H: int) -> int:
    """Rows of ``w_hh`` whose product reads h_{t-1} (all but gru_reset_before's n block, which reads r * h)."""
    return (NUM_GATES[mode] - (mode == "gru_reset_before")) * H


def workspace_size(mode: str, T: int, B: int, H: int, P: int | None = None) -> int:
    """Elements of the workspace: T*B*(G*H) gates + T*B*H per extra slot + T*B*P for h_{t-1}
    (P, the width of h, is H unless the LSTM is projected)."""
    return T * B * (H * (NUM_GATES[mode] + _extra_slots(mode)) + (H if P is None else P))


def workspace_views(mode: str, workspace: np.ndarray, T: int, B: int, H: int,
                    P: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the workspace: ``gates`` (T, B, G*H), ``extra`` (T, B, H) (Elman: (T, B, 0), empty)
    and ``h_prev`` (T, B, P): h_{t-1} of every step (carried past each sequence's end)."""
    GH, E = NUM_GATES[mode] * H, H * _extra_slots(mode)
    gates = workspace[:T * B * GH].reshape(T, B, GH)
    extra = workspace[T * B * GH:T * B * (GH + E)].reshape(T, B, E)
    h_prev = workspace[T * B * (GH + E):].reshape(T, B, H if P is None else P)
    return gates, extra, h_prev


def step_mask(lengths: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """(T, B, 1) bool: True where sequence b takes part in step t (``t < lengths[b]``)."""
    if lengths is None:
        return np.ones((T, B, 1), dtype=bool)
    return (np.arange(T)[:, None] < lengths[None, :])[:, :, None]


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))  # = 1 / (1 + exp(-v)), without overflow


#: Elman mode -> (activation, its derivative written in terms of its output h).
_ELMAN_ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], Any]]] = {
    "rnn_tanh": (np.tanh, lambda h: 1 - h ** 2),
    "rnn_relu": (lambda v: np.maximum(v, 0), lambda h: h > 0),
    "rnn_sigmoid": (_sigmoid, lambda h: h * (1 - h)),
}


# ---------------------------------------------------------------------------- forward
def _lstm_step(pre: np.ndarray, c: np.ndarray, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An LSTM step from its pre-activations (B, 4H) and c_{t-1} (B, H): the activated gates
    (B, 4H), ``c_t = f * c_{t-1} + i * g`` and ``o * tanh(c_t)`` (h_t, or m_t of the projected LSTM)."""
    i, f, g, o = (pre[:, k * H:(k + 1) * H] for k in range(4))
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    c_new = f * c + i * g
    return np.concatenate([i, f, g, o], axis=1), c_new, o * np.tanh(c_new)


def rnn_forward(mode: str, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                b_ih: np.ndarray | None, b_hh: np.ndarray | None, h0: np.ndarray,
                c0: np.ndarray | None, lengths: np.ndarray | None, need_workspace: bool = True
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, SavedLayer | None]:
    """Run one recurrent layer over all T steps (equations in the module docstring).

    Returns ``y`` (T, B, H), ``h_n`` (B, H), ``c_n`` (B, H) for lstm else None, and the
    :class:`SavedLayer` that :func:`rnn_backward` takes (None with ``need_workspace=False``).
    """
    check_forward_args(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths)
    T, B, _ = x.shape
    H = h0.shape[1]
    workspace = np.empty(workspace_size(mode, T, B, H), dtype=x.dtype)
    gates, extra, h_prev = workspace_views(mode, workspace, T, B, H)  # (T, B, G*H), (T, B, H), (T, B, H)
    mask = step_mask(lengths, T, B)                             # (T, B, 1)
    a = x @ w_ih.T                                               # (T, B, G*H): one GEMM for all steps
    if b_ih is not None:
        a += b_ih
    y = np.zeros((T, B, H), dtype=x.dtype)
    h = h0.copy()                                                # (B, H)
    c: Any = None if c0 is None else c0.copy()                   # (B, H), lstm only
    GH_h = _h_gates(mode, H)
    for t in range(T):
        h_prev[t] = h
        r = h @ w_hh[:GH_h].T                                    # (B, G*H) (gru_reset_before: (B, 2H))
        if b_hh is not None:
            r += b_hh[:GH_h]
        if mode == "lstm":
            gates[t], c_new, h_new = _lstm_step(a[t] + r, c, H)
            c = np.where(mask[t], c_new, c)
            extra[t] = c                                         # c_t (carried past the end)
        elif mode == "gru":
            rz = _sigmoid(a[t, :, :2 * H] + r[:, :2 * H])        # (B, 2H): r and z
            n = np.tanh(a[t, :, 2 * H:] + rz[:, :H] * r[:, 2 * H:])
            gates[t] = np.concatenate([rz, n], axis=1)
            extra[t] = r[:, 2 * H:]                              # r_n = h W_hn^T + b_hn
            z = rz[:, H:]
            h_new = (1 - z) * n + z * h
        elif mode == "gru_reset_before":
            rz = _sigmoid(a[t, :, :2 * H] + r)                   # (B, 2H): r and z
            extra[t] = rz[:, :H] * h                             # r * h_{t-1}
            n = np.tanh(a[t, :, 2 * H:] + extra[t] @ w_hh[2 * H:].T + (0 if b_hh is None else b_hh[2 * H:]))
            gates[t] = np.concatenate([rz, n], axis=1)
            z = rz[:, H:]
            h_new = (1 - z) * n + z * h
        else:
            pre = a[t] + r
            h_new = _ELMAN_ACTIVATIONS[mode][0](pre)
            gates[t] = h_new
        h = np.where(mask[t], h_new, h)
        y[t] = np.where(mask[t], h_new, 0)
    saved = SavedLayer(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, workspace) if need_workspace else None
    return y, h, c, saved


# ---------------------------------------------------------------------------- backward
def _lstm_step_backward(dh: np.ndarray, dc: Any, gates: np.ndarray, c: np.ndarray, c_prev: Any,
                        H: int) -> tuple[np.ndarray, np.ndarray]:
    """An LSTM step's local derivatives: given dL/d(o * tanh(c_t)) ``dh`` and dL/dc_t ``dc`` from later
    steps, ``gates`` (B, 4H), ``c`` = c_t and ``c_prev`` = c_{t-1}, returns dL/d(pre-activations)
    (B, 4H) and dL/dc_{t-1}."""
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    tanh_c = np.tanh(c)
    dc = dc + dh * o * (1 - tanh_c ** 2)          # dL/dc_t, through h_t = o * tanh(c_t)
    da = np.concatenate([dc * g * i * (1 - i),    # d(pre_i), sigmoid' = s(1 - s)
                         dc * c_prev * f * (1 - f),
                         dc * i * (1 - g ** 2),   # tanh' = 1 - tanh^2
                         dh * tanh_c * o * (1 - o)], axis=1)
    return da, dc * f


def _step_backward(mode: str, dh: np.ndarray, dc: np.ndarray | None, gates: np.ndarray,
                   extra: np.ndarray, c_prev: np.ndarray | None, h_prev: np.ndarray,
                   H: int, w_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Local derivatives of one step, given dL/dh_t (and dL/dc_t for lstm), all (B, .).

    ``gates`` (B, G*H) are the step's activated gates, ``extra`` (B, H) its workspace slot
    (lstm: c_t, gru: r_n, gru_reset_before: r * h_{t-1}), ``c_prev`` c_{t-1} (lstm) and ``h_prev``
    h_{t-1}; ``w_hh`` is read by gru_reset_before only (dL/d(r * h) = dn W_hn).

    Returns ``da`` (B, G*H) = dL/d(x W_ih^T + b_ih), ``dr`` (B, G*H) = dL/d(h W_hh^T + b_hh)
    (gru_reset_before: its n block is dL/d((r * h) W_hn^T + b_hn)), the part of dL/dh_{t-1} that
    does not pass through the ``W_hh`` rows of ``_h_gates`` (gru: ``dh * z``; gru_reset_before:
    also ``dL/d(r * h) * r``; else 0), and dL/dc_{t-1} (lstm) or None.
    """
    if mode == "lstm":
        da, dc_prev = _lstm_step_backward(dh, dc, gates, extra, c_prev, H)  # extra = c_t
        return da, da, np.zeros_like(dh), dc_prev
    if mode == "gru":
        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        dn = dh * (1 - z) * (1 - n ** 2)              # d(pre_n), pre_n = a_n + r * r_n
        dr = dn * extra * r * (1 - r)                 # extra = r_n
        dz = dh * (h_prev - n) * z * (1 - z)
        da = np.concatenate([dr, dz, dn], axis=1)
        return da, np.concatenate([dr, dz, dn * r], axis=1), dh * z, None
    if mode == "gru_reset_before":
        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        dn = dh * (1 - z) * (1 - n ** 2)              # d(pre_n), pre_n = a_n + (r * h) W_hn^T + b_hn
        drh = dn @ w_hh[2 * H:]                       # dL/d(r * h)
        dr = drh * h_prev * r * (1 - r)
        dz = dh * (h_prev - n) * z * (1 - z)
        da = np.concatenate([dr, dz, dn], axis=1)
        return da, da, dh * z + drh * r, None
    h_t = gates
    da = dh * _ELMAN_ACTIVATIONS[mode][1](h_t)
    return da, da, np.zeros_like(dh), None


def _check_output_grads(saved: SavedLayer, dy: Any, dh_n: Any, dc_n: Any) -> None:
    """The gradients a backward adds to what forward saved (already checked): ``dy`` (T, B, R),
    ``dh_n`` (B, R) and ``dc_n`` (B, H, lstm only), each None or of x's dtype; R is h's width."""
    x, h0 = saved.x, saved.h0
    T, B, _ = x.shape
    R, H = h0.shape[1], saved.w_hh.shape[0] // NUM_GATES[saved.mode]
    for name, a, shape in (("dy", dy, (T, B, R)), ("dh_n", dh_n, (B, R)), ("dc_n", dc_n, (B, H))):
        if a is not None:
            check_array(name, a, shape, x.dtype)
    if dc_n is not None and saved.mode != "lstm":
        raise ValueError(f"rnn: dc_n: expected None for mode {saved.mode!r}, got an array")


def _check_backward_args(saved: Any, dy: Any, dh_n: Any, dc_n: Any, gate_grads: bool) -> None:
    """What :func:`rnn_backward` is given: the saved state of an :func:`rnn_forward`, its gradients."""
    _check_output_grads(_check_saved(saved, "rnn_forward"), dy, dh_n, dc_n)
    if gate_grads and (saved.lengths is not None or saved.mode == "gru_reset_before"):
        raise ValueError("rnn: gate_grads: expected lengths None and a mode other than 'gru_reset_before'")


def rnn_backward(saved: SavedLayer, dy: np.ndarray | None, dh_n: np.ndarray | None, dc_n: np.ndarray | None,
                 gate_grads: bool = False, dh_steps: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
    """Backpropagation through time: gradients of every input given dy, dh_n (and dc_n).

    Walking t = T-1 .. 0 with ``dh`` = dL/dh_t (starting at ``dh_n``):  a sequence active at
    step t adds its output gradient, ``dh += dy_t``, and sends ``dh`` through the step's local
    derivatives (:func:`_step_backward`) to ``da_t``, ``dr_t`` and
    ``dh_{t-1} = dr_t W_hh (+ dh * z for gru)``;  a finished sequence carries ``dh`` unchanged.
    After the loop, with every step stacked::

        dx = da W_ih          dW_ih = sum_t da_t^T x_t        db_ih = sum_t da_t
                              dW_hh = sum_t dr_t^T h_{t-1}    db_hh = sum_t dr_t

    Returns ``(dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0)``; ``db_*`` are None without bias,
    ``dc0`` is None except for lstm. ``saved`` is what :func:`rnn_forward` returned (its arguments
    and workspace); ``dy``, ``dh_n``, ``dc_n`` may be None (zero).
    ``gate_grads=True`` (lengths None, not gru_reset_before) returns the gate gradients
    ``dg_ih`` = da and ``dg_hh`` = dr (T*B, G*H) in place of dw_ih and dw_hh (``dg_hh`` None
    unless gru, where dr differs from da), as the kernels do. ``dh_steps`` (T, B, H), when given,
    is filled with every step's ``dL/dh_t`` (``dy_t`` included; zero where ``t >= lengths[b]``).
    """
    _check_backward_args(saved, dy, dh_n, dc_n, gate_grads)
    mode, x, w_ih, w_hh, b_ih, b_hh, lengths = (saved.mode, saved.x, saved.w_ih, saved.w_hh, saved.b_ih,
                                                saved.b_hh, saved.lengths)
    T, B, _ = x.shape
    H = saved.h0.shape[1]
    gates, extra, h_prev_all = workspace_views(mode, saved.workspace, T, B, H)  # h_prev_all: h_{t-1} (T, B, H)
    mask = step_mask(lengths, T, B)
    GH_h = _h_gates(mode, H)
    da_all = np.zeros_like(gates)                                       # (T, B, G*H)
    dr_all = np.zeros_like(gates)                                       # (T, B, G*H)
    dh = np.zeros((B, H), x.dtype) if dh_n is None else dh_n.copy()
    dc: Any = None if mode != "lstm" else np.zeros((B, H), x.dtype) if dc_n is None else dc_n.copy()
    for t in reversed(range(T)):
        m = mask[t]
        dh_t = dh if dy is None else dh + dy[t]
        if dh_steps is not None:
            dh_steps[t] = np.where(m, dh_t, 0)
        c_prev = None
        if mode == "lstm":
            c_prev = extra[t - 1] if t else saved.c0
        da, dr, dh_direct, dc_prev = _step_backward(
            mode, dh_t, dc, gates[t], extra[t], c_prev, h_prev_all[t], H, w_hh)
        da_all[t] = np.where(m, da, 0)
        dr_all[t] = np.where(m, dr, 0)
        dh = np.where(m, dh_direct + dr[:, :GH_h] @ w_hh[:GH_h], dh)
        if dc is not None:
            dc = np.where(m, dc_prev, dc)
    da2 = da_all.reshape(T * B, w_hh.shape[0])                          # (T*B, G*H)
    dr2 = dr_all.reshape(T * B, w_hh.shape[0])
    dx = da_all @ w_ih                                                  # (T, B, I)
    db_ih = da2.sum(axis=0) if b_ih is not None else None
    db_hh = dr2.sum(axis=0) if b_hh is not None else None
    if gate_grads:
        return dx, da2, dr2 if mode == "gru" else None, db_ih, db_hh, dh, dc
    dw_ih = da2.T @ x.reshape(T * B, x.shape[2])                        # (G*H, I)
    dw_hh = dr2.T @ h_prev_all.reshape(T * B, H)                        # (G*H, H)
    if mode == "gru_reset_before":                                      # W_hn multiplies r * h_{t-1}
        dw_hh[2 * H:] = dr2[:, 2 * H:].T @ extra.reshape(T * B, H)
    return dx, dw_ih, dw_hh, db_ih, db_hh, dh, dc


# ---------------------------------------------------------------------------- projected LSTM
# PyTorch's nn.LSTM(proj_size=P), with ``w_hr`` (P, H), 0 < P < H, ``w_hh`` (4H, P), ``h0`` (B, P):
#   gates and c_t as the LSTM, from h_{t-1} of P features;  m_t = o * tanh(c_t) (B, H);
#   h_t = m_t W_hr^T (B, P) = y_t.
# Same interface as minirnn._C.lstm_proj_forward / lstm_proj_backward. The saved workspace is the
# LSTM's (gates and c_t of every step) with h_{t-1} P wide.
def lstm_proj_forward(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, w_hr: np.ndarray,
                      b_ih: np.ndarray | None, b_hh: np.ndarray | None, h0: np.ndarray, c0: np.ndarray,
                      lengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, SavedLayer]:
    """The projected LSTM over all T steps: ``y`` (T, B, P), ``h_n`` (B, P), ``c_n`` (B, H) and the
    :class:`SavedLayer` :func:`lstm_proj_backward` takes."""
    check_forward_args("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, w_hr=w_hr)
    T, B, _ = x.shape
    P, H = w_hr.shape
    workspace = np.empty(workspace_size("lstm", T, B, H, P), dtype=x.dtype)
    gates, cs, hs = workspace_views("lstm", workspace, T, B, H, P)  # (T, B, 4H), (T, B, H), (T, B, P)
    mask = step_mask(lengths, T, B)                           # (T, B, 1)
    a = x @ w_ih.T + (0 if b_ih is None else b_ih)            # (T, B, 4H)
    y = np.zeros((T, B, P), dtype=x.dtype)
    h, c = h0.copy(), c0.copy()                               # (B, P), (B, H)
    for t in range(T):
        hs[t] = h                                             # h_{t-1}
        gates[t], c_new, m = _lstm_step(a[t] + h @ w_hh.T + (0 if b_hh is None else b_hh), c, H)
        h_new = m @ w_hr.T                                    # the projection
        c = np.where(mask[t], c_new, c)
        cs[t] = c
        h = np.where(mask[t], h_new, h)
        y[t] = np.where(mask[t], h_new, 0)
    return y, h, c, SavedLayer("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, workspace, w_hr)


def lstm_proj_backward(saved: SavedLayer, dy: np.ndarray | None, dh_n: np.ndarray | None,
                       dc_n: np.ndarray | None) -> tuple[np.ndarray | None, ...]:
    """BPTT of :func:`lstm_proj_forward`: ``(dx, dw_ih, dw_hh, dw_hr, db_ih, db_hh, dh0, dc0)``.

    As :func:`rnn_backward` for lstm, with ``dm_t = dh_t W_hr`` in place of dL/dh_t in the cell's
    local derivatives and ``dW_hr = sum_t dh_t^T m_t``. ``dy``, ``dh_n``, ``dc_n`` may be None (zero).
    """
    _check_output_grads(_check_saved(saved, "lstm_proj_forward"), dy, dh_n, dc_n)
    x, w_ih, w_hh, b_ih, lengths = saved.x, saved.w_ih, saved.w_hh, saved.b_ih, saved.lengths
    w_hr, c0 = cast(np.ndarray, saved.w_hr), cast(np.ndarray, saved.c0)  # (check_saved: a projected LSTM's)
    T, B, _ = x.shape
    P, H = w_hr.shape
    gates, cs, hs = workspace_views("lstm", saved.workspace, T, B, H, P)  # hs: h_{t-1} (T, B, P)
    mask = step_mask(lengths, T, B)
    ms = np.where(mask, gates[:, :, 3 * H:] * np.tanh(cs), 0)          # (T, B, H) m_t, zero past the end
    da_all, dh_all = np.zeros_like(gates), np.zeros((T, B, P), x.dtype)
    dh = np.zeros((B, P), x.dtype) if dh_n is None else dh_n.copy()
    dc = np.zeros((B, H), x.dtype) if dc_n is None else dc_n.copy()
    for t in reversed(range(T)):
        m = mask[t]
        dh_t = dh + (0 if dy is None else dy[t])
        da, dc_prev = _lstm_step_backward(dh_t @ w_hr, dc, gates[t], cs[t], cs[t - 1] if t else c0, H)
        da_all[t], dh_all[t] = np.where(m, da, 0), np.where(m, dh_t, 0)
        dh = np.where(m, da @ w_hh, dh)
        dc = np.where(m, dc_prev, dc)
    da2 = da_all.reshape(T * B, 4 * H)
    dw_hh = da2.T @ hs.reshape(T * B, P)
    dw_hr = dh_all.reshape(T * B, P).T @ ms.reshape(T * B, H)
    db = da2.sum(axis=0) if b_ih is not None else None
    return (da_all @ w_ih, da2.T @ x.reshape(T * B, x.shape[2]), dw_hh, dw_hr, db,
            None if db is None else db.copy(), dh, dc)
