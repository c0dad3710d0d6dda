"""nn: Module registration and state, layers against torch.nn, containers, dropout, loss modules."""
from __future__ import annotations

import numpy as np
import pytest

import minirnn
from minirnn import Tensor, gradcheck, nn
from torch_oracle import check_against_torch


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))
        self.register_buffer("steps", np.zeros((), dtype=np.int64))
        self.register_buffer("cache", np.zeros(2, dtype=np.float32), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = Block()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 2, bias=False)])
        self.tied = self.layers[0]  # the same module twice: its parameters are listed once

    def forward(self, x: Tensor) -> Tensor:
        h = self.encoder(x)
        for layer in self.layers:
            h = layer(h)
        return h


NAMES = ["encoder.scale", "encoder.fc.weight", "encoder.fc.bias", "layers.0.weight", "layers.0.bias",
         "layers.1.weight"]


def test_registration_order_and_dotted_names() -> None:
    net = Net()
    assert [n for n, _ in net.named_parameters()] == NAMES
    assert len(list(net.parameters())) == 6
    assert [n for n, _ in net.named_children()] == ["encoder", "layers", "tied"]
    assert [n for n, _ in net.named_modules()] == ["", "encoder", "encoder.fc", "layers", "layers.0", "layers.1"]
    assert [n for n, _ in net.named_buffers()] == ["encoder.steps", "encoder.cache"]
    # torch's order: each module's own parameters, then its buffers, then its children
    assert list(net.state_dict()) == NAMES[:1] + ["encoder.steps"] + NAMES[1:]


def test_reassignment_and_deletion() -> None:
    block = Block()
    block.fc = nn.Linear(3, 4, bias=False)  # replacing keeps the position
    block.scale = None
    assert [n for n, _ in block.named_parameters()] == ["fc.weight"]
    with pytest.raises(TypeError, match="expected a Parameter or None"):
        block.scale = np.ones(4)
    del block.fc
    assert not hasattr(block, "fc") and list(block.named_modules()) == [("", block)]
    block.fc = Tensor(np.ones(2))  # a plain tensor is an ordinary attribute, not a parameter
    assert list(block.parameters()) == []


def test_forgetting_super_init_is_reported() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_train_eval_and_zero_grad() -> None:
    net = Net()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    for p in net.parameters():
        p.grad = np.ones_like(p.data)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(TypeError, match="bool"):
        net.train("no")


def test_state_dict_round_trip_copies() -> None:
    a, b = Net(), Net()
    state = a.state_dict()
    state["encoder.fc.weight"][...] = 7  # a copy: the module is untouched
    assert not (a.encoder.fc.weight.data == 7).any()
    state = a.state_dict()
    before = b.encoder.fc.weight.data
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.encoder.fc.weight.data is before  # loaded in place: optimizers keep working
    for name, value in b.state_dict().items():
        np.testing.assert_array_equal(value, state[name])


def test_load_state_dict_strict_errors_change_nothing() -> None:
    net = Net()
    state = net.state_dict()
    original = net.encoder.scale.data.copy()
    state["encoder.scale"] = np.full(4, 3.0)
    del state["layers.1.weight"]
    state["extra"] = np.ones(1)
    with pytest.raises(ValueError, match=r"missing keys \['layers.1.weight'\], unexpected keys \['extra'\]"):
        net.load_state_dict(state)
    np.testing.assert_array_equal(net.encoder.scale.data, original)
    result = net.load_state_dict(state, strict=False)
    assert result == (["layers.1.weight"], ["extra"])
    np.testing.assert_array_equal(net.encoder.scale.data, 3.0)


def test_load_state_dict_shape_and_type_errors() -> None:
    net = Net()
    state = net.state_dict()
    state["encoder.fc.weight"] = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"'encoder.fc.weight': expected shape \(4, 3\), got \(3, 4\)"):
        net.load_state_dict(state)
    state = net.state_dict()
    state["encoder.scale"] = np.array(["a"] * 4)
    with pytest.raises(TypeError, match="expected a numeric array"):
        net.load_state_dict(state)
    with pytest.raises(TypeError, match="expected a mapping"):
        net.load_state_dict([1, 2])


def test_load_state_dict_casts_and_accepts_tensors() -> None:
    net = Net()
    state = {k: Tensor(v.astype(np.float64)) if v.dtype.kind == "f" else v for k, v in net.state_dict().items()}
    state["encoder.fc.bias"] = Tensor(np.array([0.1, 0.2, 0.3, 0.4]))
    net.load_state_dict(state)
    assert net.encoder.fc.bias.dtype == np.float32
    np.testing.assert_array_equal(net.encoder.fc.bias.data, np.float32([0.1, 0.2, 0.3, 0.4]))


def test_to_dtype_in_place() -> None:
    net = Net()
    param = net.encoder.fc.weight
    param.grad = np.ones((4, 3), np.float32)
    assert net.double() is net
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert param is net.encoder.fc.weight and param.grad.dtype == np.float64
    assert net.encoder.steps.dtype == np.int64  # integer buffers keep their dtype
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    with pytest.raises(TypeError, match="Module.to: dtype: expected float32 or float64, got int32"):
        net.to(np.int32)


def test_repr_like_torch() -> None:
    assert repr(nn.Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"
    assert repr(nn.Sequential(nn.Linear(1, 2))) == (
        "Sequential(\n  (0): Linear(in_features=1, out_features=2, bias=True)\n)")


def test_containers() -> None:
    layers = [nn.Linear(2, 3), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 2 and seq[-1] is layers[1] and list(seq) == layers
    assert isinstance(seq[:1], nn.Sequential) and seq[:1][0] is layers[0]
    with pytest.raises(IndexError, match=r"expected a value in \[-2, 2\), got 2"):
        seq[2]
    with pytest.raises(TypeError, match="expected a Module or None"):
        nn.ModuleList([np.ones(2)])
    x = Tensor(np.ones((5, 2), np.float32))
    np.testing.assert_allclose(seq(x).data, layers[1](layers[0](x)).data)


def test_linear_init_bounds_and_validation() -> None:
    w = nn.Linear(400, 300, generator=np.random.default_rng(0)).weight.data
    assert w.dtype == np.float32 and np.abs(w).max() <= 1 / 20 and np.abs(w).max() > 0.99 / 20
    with pytest.raises(TypeError, match="in_features: expected an int, got float"):
        nn.Linear(2.0, 3)
    with pytest.raises(ValueError, match="out_features: expected a non-negative int, got -1"):
        nn.Linear(2, -1)
    with pytest.raises(TypeError, match="Linear: expected a float dtype, got int32"):
        nn.Linear(2, 1, dtype=np.int32)
    with pytest.raises(ValueError, match="expected input with last dimension 2, got shape \\(3, 5\\)"):
        nn.Linear(2, 1)(Tensor(np.ones((3, 5), np.float32)))


def test_linear_gradcheck() -> None:
    layer = nn.Linear(3, 2, dtype=np.float64)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias])


def test_linear_matches_torch_state_dict() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.Linear(5, 3).double()
    ours = nn.Linear(5, 3, dtype=np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 4, 5))
    check_against_torch(ours, ref, [x], atol=1e-12, rtol=1e-12)  # values and d/dx
    np.testing.assert_allclose(ours.weight.grad, ref.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.bias.grad, ref.bias.grad.numpy(), rtol=1e-12, atol=1e-12)
    back = ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    assert not back.missing_keys and not back.unexpected_keys


def test_load_torch_tensors_directly() -> None:
    torch = pytest.importorskip("torch")
    ref = torch.nn.Linear(4, 2)  # float32 torch tensors, no .numpy() needed
    ours = nn.Linear(4, 2, dtype=np.float64)
    ours.load_state_dict(ref.state_dict())
    assert ours.weight.dtype == np.float64
    np.testing.assert_array_equal(ours.weight.data, ref.weight.detach().numpy().astype(np.float64))


def test_embedding_matches_torch_with_padding() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.Embedding(6, 4, padding_idx=2).double()
    ours = nn.Embedding(6, 4, padding_idx=2, dtype=np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    ids = np.array([[0, 2, 5], [2, 2, 1]])
    check_against_torch(ours, ref, [ids], atol=1e-12, rtol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, ref.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert (ours.weight.grad[2] == 0).all() and (ours.weight.grad[0] != 0).all()


def test_embedding_init_and_validation() -> None:
    emb = nn.Embedding(1000, 50, padding_idx=-1, generator=np.random.default_rng(0))
    assert emb.padding_idx == 999 and (emb.weight.data[999] == 0).all()
    assert emb.weight.data.std() == pytest.approx(1.0, rel=0.02)
    assert emb(Tensor(np.array([3, 4]))).shape == (2, 50)
    with pytest.raises(ValueError, match=r"padding_idx: expected a value in \[-3, 3\), got 3"):
        nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(TypeError, match="embedding_dim: expected an int, got str"):
        nn.Embedding(3, "2")
    with pytest.raises(TypeError, match="Embedding: expected a float dtype, got int64"):
        nn.Embedding(3, 2, dtype=np.int64)
    with pytest.raises(IndexError, match="got 3"):
        nn.Embedding(3, 2)(np.array([0, 3]))


def test_embedding_gradcheck() -> None:
    # (with padding_idx the padding row's gradient is zero by definition, not the derivative)
    emb = nn.Embedding(4, 3, dtype=np.float64)
    gradcheck(lambda w: emb(np.array([[1, 0], [3, 1]])), [emb.weight])


def test_dropout_train_eval_and_seed() -> None:
    x = Tensor(np.ones((200, 50)))
    drop = nn.Dropout(0.25)
    minirnn.manual_seed(5)
    a = drop(x).data
    minirnn.manual_seed(5)
    b = drop(x).data
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1 / 0.75}
    assert (a == 0).mean() == pytest.approx(0.25, abs=0.02)
    assert drop.eval()(x) is x  # identity in eval mode
    seeded = nn.Dropout(0.5, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(seeded(x).data, nn.Dropout(0.5, generator=np.random.default_rng(1))(x).data)
    with pytest.raises(ValueError, match=r"expected p in \[0, 1\), got 1.5"):
        nn.Dropout(1.5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_match_torch(reduction: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4))
    cases = [
        (nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
         np.array([0, 3, -100, 1, 3])),
        (nn.CrossEntropyLoss(ignore_index=1, reduction=reduction),
         torch.nn.CrossEntropyLoss(ignore_index=1, reduction=reduction), np.array([0, 3, 2, 1, 3])),
        (nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction), rng.standard_normal((5, 4))),
        (nn.BCEWithLogitsLoss(reduction=reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction),
         (rng.random((5, 4)) > 0.5).astype(np.float64)),
        (nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=np.array([0.5, 1.0, 2.0, 3.0])),
         torch.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor([0.5, 1.0, 2.0, 3.0],
                                                                               dtype=torch.float64)),
         (rng.random((5, 4)) > 0.5).astype(np.float64)),
    ]
    for ours, ref, target in cases:
        check_against_torch(lambda x: ours(x, target), lambda x: ref(x, torch.from_numpy(target)), [logits],
                            atol=1e-12, rtol=1e-12)


def test_loss_module_validation_and_repr() -> None:
    with pytest.raises(ValueError, match="expected reduction in .*got 'avg'"):
        nn.MSELoss(reduction="avg")
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


def test_training_loop_reduces_loss() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((64, 3)))
    y = x.data @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = nn.Sequential(nn.Linear(3, 1, dtype=np.float64, generator=rng))
    opt = minirnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.MSELoss()
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 1e-4 * first
    np.testing.assert_allclose(model[0].bias.data, [0.3], atol=1e-3)


def test_apply_and_requires_grad_() -> None:
    net = Net()
    seen: list[str] = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 3  # children first, shared module once
    net.apply(lambda m: minirnn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert all((m.weight.data == 0).all() for m in net.modules() if isinstance(m, nn.Linear))
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
