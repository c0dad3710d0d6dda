"""autobatch(): ops recorded lazily and run in batches give the eager tape's outputs and gradients.

Every test runs the same code twice, eagerly and inside ``minirnn.autobatch()``, from the same
weights and inputs, and compares the loss and every gradient (1e-9 float64, 1e-4 float32).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import numpy as np
import pytest

import minirnn
from minirnn import Tensor, functional as F, nn, ops
from minirnn.autobatch import LazyTensor
from minirnn.bench import dynamic_models as dm

TOL = {np.float32: 1e-4, np.float64: 1e-9}


def run_both(leaves: dict[str, Tensor], forward: Callable[[], Tensor]) -> tuple[Any, Any, minirnn.autobatch]:
    """(eager, batched) results of ``forward().backward()``: (loss value, {name: grad}); and the log."""
    results = []
    log = None
    for batched in (False, True):
        for t in leaves.values():
            t.grad = None
        with minirnn.autobatch(enabled=batched) as log:
            loss = forward()
        loss.backward()
        results.append((np.array(loss.data), {n: None if t.grad is None else t.grad.copy() for n, t in leaves.items()}))
    return results[0], results[1], log


def assert_same(eager: Any, batched: Any, tol: float) -> None:
    np.testing.assert_allclose(batched[0], eager[0], rtol=tol, atol=tol)
    for name, g in eager[1].items():
        assert (g is None) == (batched[1][name] is None), name
        if g is not None:
            np.testing.assert_allclose(batched[1][name], g, rtol=tol, atol=tol, err_msg=name)


def module_leaves(model: nn.Module) -> dict[str, Tensor]:
    return dict(model.named_parameters())


# ============================================================================ the three models
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tree_lstm_on_random_trees(dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    trees = [dm.treebank_tree(rng, 20, 5) for _ in range(6)]
    minirnn.manual_seed(seed)
    model = dm.TreeLSTM(20, embed=12, hidden=8).to(dtype)
    eager, batched, log = run_both(module_leaves(model),
                                   lambda: dm.tree_lstm_loss(model, trees, dm.minirnn_ops(), model.hidden))
    assert_same(eager, batched, TOL[dtype])
    # It batched: far fewer batches than ops, and every op went into a batch.
    assert len(log.batches) < log.ops / 5
    assert not [b for b in log.batches if b.how.startswith("alone")]


def test_tree_lstm_by_level_matches_the_recursion() -> None:
    rng = np.random.default_rng(3)
    trees = [dm.treebank_tree(rng, 20, 5) for _ in range(5)]
    model = dm.TreeLSTM(20, embed=12, hidden=8).double()
    leaves = module_leaves(model)
    eager, _, _ = run_both(leaves, lambda: dm.tree_lstm_loss(model, trees, dm.minirnn_ops(), model.hidden))
    by_level, _, _ = run_both(leaves, lambda: dm.tree_lstm_loss_by_level(model, dm.level_plan(trees)))
    assert_same(eager, by_level, 1e-9)


@pytest.mark.extension
@pytest.mark.parametrize("seed", [0, 1])
def test_message_passing_on_random_graphs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    graphs = [dm.random_graph(rng, 10) for _ in range(5)]
    minirnn.manual_seed(seed)
    model = dm.MPNN(10, hidden=8).double()
    eager, batched, log = run_both(module_leaves(model), lambda: dm.mpnn_loss(model, graphs, dm.minirnn_ops()))
    assert_same(eager, batched, 1e-9)
    assert Counter(b.op for b in log.batches if b.how == "batched")["FusedCellStep"] == model.rounds


@pytest.mark.extension
def test_decoders_of_different_lengths_read_their_argmax() -> None:
    rng = np.random.default_rng(4)
    model = dm.Decoder(source=6, vocab=9, embed=5, hidden=8).double()
    sources = [Tensor(rng.standard_normal((1, 6))) for _ in range(7)]
    targets = [rng.integers(9, size=int(rng.integers(1, 8))) for _ in range(7)]
    eager, batched, log = run_both(module_leaves(model), lambda: dm.decoders_loss(model, sources, targets,
                                                                                  dm.minirnn_ops()))
    assert_same(eager, batched, 1e-9)
    cells = [b for b in log.batches if b.op == "FusedCellStep"]
    assert len(cells) == max(len(y) for y in targets)  # one batch per step: the reads did not split them


def test_the_models_match_torch() -> None:
    """The benchmark's models are the same in both frameworks (the minirnn side is the eager tape)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    trees = [dm.treebank_tree(rng, 20, 5) for _ in range(3)]
    graphs = [dm.random_graph(rng, 10) for _ in range(3)]
    sources = [rng.standard_normal((1, 6)) for _ in range(3)]
    targets = [rng.integers(9, size=int(rng.integers(1, 6))) for _ in range(3)]
    cases = [
        (dm.TreeLSTM(20, embed=12, hidden=8).double(), dm.torch_twin,
         lambda m, fw: dm.tree_lstm_loss(m, trees, fw, 8)),
        (dm.MPNN(10, hidden=8).double(), dm.torch_twin, lambda m, fw: dm.mpnn_loss(m, graphs, fw)),
        (dm.Decoder(source=6, vocab=9, embed=5, hidden=8).double(), dm.torch_twin,
         lambda m, fw: dm.decoders_loss(m, [(Tensor if fw is mfw else torch.from_numpy)(s) for s in sources],
                                        targets, fw)),
    ]
    mfw, tfw = dm.minirnn_ops(), dm.torch_ops()
    for model, twin_of, loss_of in cases:
        twin = twin_of(model)
        with minirnn.autobatch():
            loss = loss_of(model, mfw)
        loss.backward()
        expected = loss_of(twin, tfw)
        expected.backward()
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-9)
        for name, p in twin.named_parameters():
            np.testing.assert_allclose(dict(model.named_parameters())[name].grad, p.grad.numpy(), rtol=1e-7,
                                       atol=1e-10, err_msg=f"{type(model).__name__}.{name}")


# ============================================================================ DyNet's class of bugs
def test_a_shared_input_made_as_a_non_first_member_of_a_batch() -> None:
    """b is row 1 of the tanh batch; three later ops read it (two in one batch): its gradient
    must be the sum of theirs, and rows 0 and 2 must get nothing from them."""
    rng = np.random.default_rng(6)
    W = Tensor(rng.standard_normal((4, 4)), requires_grad=True)
    xs = [Tensor(rng.standard_normal(4), requires_grad=True) for _ in range(3)]

    def forward() -> Tensor:
        a, b, c = [ops.tanh(x) for x in xs]
        uses = [ops.linear(b, W), ops.linear(b, W), ops.linear(a, W)]  # one batch, b twice
        return ops.stack([(u * u).sum() for u in uses] + [(b * c).sum()], 0).sum()

    eager, batched, _ = run_both({"W": W, **{f"x{i}": x for i, x in enumerate(xs)}}, forward)
    assert_same(eager, batched, 1e-12)


def test_a_shared_weight_used_at_several_depths() -> None:
    rng = np.random.default_rng(7)
    W = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    xs = [Tensor(rng.standard_normal(3)) for _ in range(4)]

    def forward() -> Tensor:
        outs = []
        for k, x in enumerate(xs):  # member k applies W k+1 times: depths 1..4
            for _ in range(k + 1):
                x = ops.linear(x, W, b).tanh()
            outs.append(x.sum())
        return ops.stack(outs, 0).sum()

    eager, batched, log = run_both({"W": W, "b": b}, forward)
    assert_same(eager, batched, 1e-12)
    assert [r.size for r in log.batches if r.op == "Linear"] == [4, 3, 2, 1]


# ============================================================================ op coverage
def _members(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> list[Tensor]:
    return [Tensor(rng.standard_normal(shape), requires_grad=True) for _ in range(n)]


OP_CASES: dict[str, Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]] = {
    # (x, y: a member's own (2, 3); W (3, 3), bias (3,): shared)
    "pointwise": lambda x, y, W, b: x.exp() + x.tanh() * y.sigmoid() - y.relu() / (2 + x.clip(-0.5, 0.5)),
    "softplus_log_neg_pow": lambda x, y, W, b: -(ops.softplus(x) + ops.log(ops.softplus(y))) ** 2,
    "broadcast_shared": lambda x, y, W, b: x * b + b - x[0],
    "broadcast_const": lambda x, y, W, b: x * Tensor(np.arange(3.0)) + 1.5,
    "where": lambda x, y, W, b: ops.where(np.array([[True, False, True], [False, True, True]]), x, y),
    "matmul_weight_right": lambda x, y, W, b: x @ W,
    "matmul_weight_left": lambda x, y, W, b: W @ x[1],
    "matmul_weight_left_matrix": lambda x, y, W, b: W @ x.T,
    "matmul_both_members": lambda x, y, W, b: x @ y.T,
    "matmul_vectors": lambda x, y, W, b: x[0] @ y[1] + x @ y[1],
    "linear": lambda x, y, W, b: F.linear(x, W, b) + F.linear(y[0], W),
    "reductions": lambda x, y, W, b: x.sum(0) + y.mean(1, keepdims=True).sum() + x.max(1).sum(),
    "softmax": lambda x, y, W, b: x.softmax(1) * y.log_softmax(0),
    "reshape_permute": lambda x, y, W, b: x.reshape(-1, 2) @ y.reshape(3, 2).T + x.T.sum(),
    "getitem_basic": lambda x, y, W, b: x[:, 1:] * y[1, :2] + x[..., 0, None],
    "getitem_rows": lambda x, y, W, b: x[np.array([1, 0, 1])] + y[[0, 0, 1], [2, 1, 0]][:, None],
    "cat_stack_split": lambda x, y, W, b: ops.split(ops.cat([x, y], 1), [2, 4], 1)[1].sum(1) + ops.stack([x, y], 2).sum(2).sum(1),
    "embedding": lambda x, y, W, b: F.embedding(np.array([2, 0]), W) * x,
    "cast": lambda x, y, W, b: x.astype(np.float32).astype(np.float64) * y,
    "cross_entropy": lambda x, y, W, b: F.cross_entropy(x @ W, np.array([2, 0])) + F.mse_loss(x, y),
    "bce": lambda x, y, W, b: F.binary_cross_entropy_with_logits(x, y.sigmoid(), reduction="sum"),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_each_op_batches_like_eager(case: str) -> None:
    rng = np.random.default_rng(8)
    xs, ys = _members(rng, 4, (2, 3)), _members(rng, 4, (2, 3))
    W = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    leaves = {"W": W, "b": b, **{f"x{i}": x for i, x in enumerate(xs)}, **{f"y{i}": y for i, y in enumerate(ys)}}
    fn = OP_CASES[case]
    eager, batched, log = run_both(leaves, lambda: ops.stack([fn(x, y, W, b).sum() for x, y in zip(xs, ys)], 0).sum())
    assert_same(eager, batched, 1e-12)
    assert not [r for r in log.batches if r.how.startswith("alone")], log.batches
    assert max(r.size for r in log.batches) >= 4  # (two ops of one signature per member may join: 8)


@pytest.mark.parametrize("cell,options", [("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {}),
                                          ("GRUCell", {"reset_after": False}), ("RNNCell", {"nonlinearity": "sigmoid"})])
@pytest.mark.parametrize("batch", [None, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_cell_steps_batch_over_members(cell: str, options: dict, batch: int | None, dtype: Any) -> None:
    rng = np.random.default_rng(9)
    model = getattr(nn, cell)(4, 5, **options).to(dtype)
    shape = (4,) if batch is None else (batch, 4)
    inputs = [[Tensor(rng.standard_normal(shape).astype(dtype)) for _ in range(1 + k % 3)] for k in range(5)]

    def forward() -> Tensor:
        losses = []
        for sequence in inputs:  # members of different lengths
            state = None
            for x in sequence:
                state = model(x, state)
            losses.append((state[0] if cell == "LSTMCell" else state).sum())
        return ops.stack(losses, 0).sum()

    eager, batched, _ = run_both(module_leaves(model), forward)
    assert_same(eager, batched, TOL[dtype])


# ============================================================================ reading, falling back, hooks
def test_reading_a_value_inside_the_block_runs_pending_work_and_goes_on() -> None:
    rng = np.random.default_rng(10)
    W = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    xs = [Tensor(rng.standard_normal(3)) for _ in range(3)]
    with minirnn.autobatch() as log:
        hs = [ops.linear(x, W).tanh() for x in xs]
        assert isinstance(hs[0], LazyTensor) and hs[0].shape == (3,)
        first = hs[1].item() if hs[1].size == 1 else hs[1].numpy().copy()  # forces
        np.testing.assert_allclose(first, np.tanh(xs[1].data @ W.data.T))
        total = ops.stack([h.sum() for h in hs], 0).sum()
        assert float(total.data) == pytest.approx(float(np.tanh(np.stack([x.data for x in xs]) @ W.data.T).sum()))
    total.backward()
    assert W.grad is not None
    assert [r.op for r in log.batches][:2] == ["Linear", "Tanh"]


def test_an_op_without_a_rule_runs_alone_visibly_and_correctly() -> None:
    class Square(minirnn.Function):
        @staticmethod
        def forward(ctx: Any, x: np.ndarray) -> np.ndarray:
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx: Any, grad: np.ndarray) -> np.ndarray:
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    rng = np.random.default_rng(11)
    xs = _members(rng, 3, (2,))
    eager, batched, log = run_both({f"x{i}": x for i, x in enumerate(xs)},
                                   lambda: ops.stack([Square.apply(x.tanh()).sum() for x in xs], 0).sum())
    assert_same(eager, batched, 1e-12)
    alone = [r for r in log.batches if r.how.startswith("alone")]
    assert [r.op for r in alone] == ["Square"] * 3 and "no batching rule" in alone[0].how


def test_dropout_runs_alone_and_draws_as_eager() -> None:
    rng = np.random.default_rng(12)
    xs = _members(rng, 3, (50,))

    def forward() -> Tensor:
        minirnn.manual_seed(5)
        return ops.stack([F.dropout(x.tanh(), 0.5, training=True).sum() for x in xs], 0).sum()

    eager, batched, _ = run_both({f"x{i}": x for i, x in enumerate(xs)}, forward)
    assert_same(eager, batched, 1e-12)


def test_a_hook_on_a_lazy_tensor_sees_its_own_gradient() -> None:
    rng = np.random.default_rng(13)
    xs = _members(rng, 3, (4,))
    seen: dict[bool, list[np.ndarray]] = {False: [], True: []}
    for batched in (False, True):
        with minirnn.autobatch(enabled=batched):
            hs = [x.tanh() for x in xs]
            hs[1].register_hook(lambda g, b=batched: seen[b].append(g.copy()))
            hs[2].register_hook(lambda g: g * 3)  # replaces row 2's gradient only
            loss = ops.stack([(h * h).sum() for h in hs], 0).sum()
        for x in xs:
            x.grad = None
        loss.backward()
        grads = [x.grad.copy() for x in xs]
        if not batched:
            expected = grads
    np.testing.assert_allclose(seen[True][0], seen[False][0], rtol=1e-12)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12)


def test_no_grad_inside_the_block_and_values_after_it() -> None:
    rng = np.random.default_rng(14)
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    with minirnn.autobatch():
        with minirnn.no_grad():
            frozen = x.tanh()
        live = x.tanh()
    assert not frozen.requires_grad and live.requires_grad
    (live * frozen).sum().backward()  # after the block: eager ops on computed lazy tensors
    np.testing.assert_allclose(x.grad, (1 - np.tanh(x.data) ** 2) * np.tanh(x.data), rtol=1e-12)


def test_disabled_and_nested_blocks() -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    with minirnn.autobatch(enabled=False) as log:
        y = x.tanh()
    assert type(y) is Tensor and log.batches == []
    with minirnn.autobatch() as outer:
        with minirnn.autobatch() as inner:
            z = x.tanh()
        assert inner is outer and isinstance(z, LazyTensor)
    assert [r.op for r in outer.batches] == ["Tanh"]


def test_bad_shapes_raise_the_ops_own_errors_when_recorded() -> None:
    W = Tensor(np.ones((3, 4)), requires_grad=True)
    x = Tensor(np.ones(2), requires_grad=True)
    with minirnn.autobatch():
        h = x.tanh()
        with pytest.raises(ValueError, match=r"linear\(\): expected x of shape \(\.\.\., 4\)"):
            F.linear(h, W)
        with pytest.raises(ValueError, match=r"add\(\): expected shapes that broadcast together"):
            h + Tensor(np.ones(3))
        with pytest.raises(ValueError, match="matmul: shapes"):
            h @ W
        with pytest.raises(IndexError, match="getitem"):
            h[5]
    with pytest.raises(TypeError, match="LazyTensor is made by ops recorded inside"):
        LazyTensor(np.ones(2))


def test_the_batch_listing() -> None:
    W = Tensor(np.ones((3, 3)), requires_grad=True)
    with minirnn.autobatch() as log:
        ops.stack([ops.linear(Tensor(np.ones(3) * k), W).sum() for k in range(4)], 0)
    text = minirnn.graph.batch_table(log)
    assert "Linear" in text and "shared(3, 3)" in text and "4" in text.splitlines()[1]
    assert f"{len(log.batches)} batches for {log.ops} ops" in text


def test_an_error_inside_the_block_leaves_eager_mode_and_the_collector_as_they_were() -> None:
    import gc
    import threading

    from minirnn.autograd import _autobatch_state
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with minirnn.autobatch():
            Tensor(np.ones(2)).tanh()
            1 / 0
    assert _autobatch_state.recorder is None and gc.isenabled()
    assert type(Tensor(np.ones(2), requires_grad=True).tanh()) is Tensor  # eager again

    seen = []  # the block is per thread: another thread records eagerly meanwhile
    with minirnn.autobatch():
        worker = threading.Thread(target=lambda: seen.append(type(Tensor(np.ones(2)) * 2)))
        worker.start()
        worker.join()
        assert isinstance(Tensor(np.ones(2)) * 2, LazyTensor)
    assert seen == [Tensor]
