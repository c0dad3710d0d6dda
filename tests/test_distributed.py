"""Data-parallel training over MPI (minirnn.distributed).

The MPI tests launch ``mpiexec -n 2`` on tests/mpi_worker.py or ``python -m minirnn`` in a
subprocess with a timeout (a hung collective fails the test instead of hanging the suite). They skip,
saying why, where MPI cannot start (no mpi4py or no mpiexec: ``pip install -e ".[mpi]"``), except
when ``MINIRNN_REQUIRE_MPI=1`` (set by .ci/run): there a missing MPI fails them.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minirnn
import mpi_worker
from minirnn import distributed, nn

WORKER = str(Path(__file__).with_name("mpi_worker.py"))
TIMEOUT_S = 120


@functools.lru_cache(maxsize=None)
def _mpi_unavailable() -> str | None:
    """Why an ``mpiexec -n 2`` job cannot start here, or None when it can."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install -e '.[mpi]')"
    if _mpiexec() is None:
        return "no mpiexec next to the Python executable or on PATH (pip install -e '.[mpi]')"
    probe = [_mpiexec(), "-n", "2", sys.executable, "-c", "from mpi4py import MPI; MPI.COMM_WORLD.Barrier()"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "a 2-rank MPI job did not finish in 60 s"
    return None if done.returncode == 0 else f"a 2-rank MPI job failed to start: {done.stderr[-500:]}"


def _mpiexec() -> str | None:
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


@pytest.fixture
def mpi() -> None:
    reason = _mpi_unavailable()
    if reason is not None:
        if os.environ.get("MINIRNN_REQUIRE_MPI") == "1":
            pytest.fail(f"MINIRNN_REQUIRE_MPI=1 but {reason}")
        pytest.skip(reason)


def _launch(ranks: int | None, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` under ``mpiexec -n ranks`` (None: a plain process), one thread a rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in (*distributed._LAUNCHER_SIZE_VARIABLES, "PMIX_RANK"):  # (in case pytest runs under a launcher)
        env.pop(name, None)
    command = [sys.executable, *args] if ranks is None else [_mpiexec(), "-n", str(ranks), sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL)


def _train(tmp_path: Path, ranks: int | None, *options: str) -> list[dict[str, np.ndarray]]:
    out = tmp_path / f"ranks{ranks}{''.join(options)}"
    out.mkdir()
    done = _launch(ranks, WORKER, "train", str(out), *options)
    assert done.returncode == 0, done.stderr
    return [{**np.load(out / f"rank{r}.npz"), "norms": np.load(out / f"norms{r}.npy")} for r in range(ranks or 1)]


@pytest.mark.parametrize("options", [(), ("--clip", "0.05"), ("--bucket-mb", "0.001"),
                                     ("--bucket-mb", "0.001", "--no-overlap")],
                         ids=["one-bucket", "clipped", "many-buckets", "many-buckets-after-backward"])
def test_two_ranks_take_the_single_process_steps(mpi: None, tmp_path: Path, options: tuple[str, ...]) -> None:
    """2 ranks with batch 2 each == 1 process with batch 4: 20 Adam steps of a float64 2-layer LSTM
    model, gradient norms (the averaged gradient's) and parameters within 1e-9, ranks bitwise equal."""
    (alone,) = _train(tmp_path, None, *options)
    first, second = _train(tmp_path, 2, *options)
    if "--clip" in options:
        assert (alone["norms"] > 0.05).sum() >= 10  # clipping really acted on most steps
    assert alone.keys() == first.keys()
    for name in alone:
        np.testing.assert_allclose(first[name], alone[name], rtol=0, atol=1e-9, err_msg=name)
        assert first[name].tobytes() == second[name].tobytes(), f"{name} differs between the ranks"
    minirnn.manual_seed(0)
    start = mpi_worker.model().state_dict()
    assert max(np.abs(alone[k] - start[k]).max() for k in start) > 1e-2  # the 20 steps really trained


@pytest.mark.parametrize("kill", [False, True], ids=["raises", "killed"])
def test_a_failing_rank_ends_the_job_promptly(mpi: None, kill: bool) -> None:
    start = time.perf_counter()
    done = _launch(2, WORKER, "fail", "1", *(["--kill"] if kill else []))
    assert time.perf_counter() - start < 30
    assert done.returncode != 0
    assert "passed the collective" not in done.stdout
    if not kill:
        assert "RuntimeError: rank 1 fails on purpose" in done.stderr
        assert "rank 1 of 2: aborting the job" in done.stderr


def test_ranks_know_their_world_and_a_parameter_left_without_gradient_is_named(mpi: None) -> None:
    done = _launch(2, WORKER, "unused")
    assert sorted(done.stdout.split("\n")[:2]) == ["0 2 2 True", "1 2 2 True"]
    assert done.returncode != 0
    assert "the last backward produced no gradient for ['unused.bias', 'unused.weight']" in done.stderr


def test_a_nan_loss_on_one_rank_makes_every_rank_skip_that_update(mpi: None, tmp_path: Path) -> None:
    done = _launch(2, WORKER, "nonfinite", str(tmp_path))
    assert done.returncode == 0, done.stderr
    first, second = (np.load(tmp_path / f"rank{r}.npz") for r in range(2))
    assert first["skipped"] == second["skipped"] == 1
    assert np.isnan(first["losses"][2]) and np.isnan(second["losses"][2])  # both saw the mean: NaN
    assert np.isfinite(np.delete(first["losses"], 2)).all()
    for name in first.files:
        assert first[name].tobytes() == second[name].tobytes(), name


def _charlm(tmp_path: Path, ranks: int | None, out: str, *options: str) -> subprocess.CompletedProcess:
    done = _launch(ranks, "-m", "minirnn", "train", "charlm", "--data", "corpus.txt", "--seq-len", "8",
                   "--batch", "4", "--embed", "8", "--hidden", "16", "--samples", "1", "--quiet", "--threads", "1",
                   "--out", out, *options, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    from minirnn.charlm import default_corpus
    path = tmp_path / "corpus.txt"
    path.write_text(default_corpus()[:20000], encoding="utf-8")
    return path


def test_train_charlm_on_two_ranks_logs_once_and_resumes_bitwise(mpi: None, tmp_path: Path, corpus: Path) -> None:
    """``mpiexec -n 2 python -m minirnn train charlm``: one log (rank 0's), one checkpoint holding the
    whole batch's carried state; stopping after 3 steps and resuming to 6 ends on the same bits
    as 6 steps in one go."""
    whole = _charlm(tmp_path, 2, "whole.npz", "--steps", "6")
    assert whole.stdout.count("data: corpus.txt") == 1 and whole.stdout.count("saved whole.npz") == 1
    assert whole.stdout.count("--- sample 1") == 1
    _charlm(tmp_path, 2, "part.npz", "--steps", "3")
    _charlm(tmp_path, 2, "part.npz", "--resume", "part.npz", "--steps", "6")
    a, b = minirnn.load(str(tmp_path / "whole.npz")), minirnn.load(str(tmp_path / "part.npz"))
    assert a["train"]["state"][0].shape == (2, 4, 16)  # (layers, global batch, hidden)
    for name in a["model"]:
        assert a["model"][name].tobytes() == b["model"][name].tobytes(), name
    for x, y in zip(a["train"]["state"], b["train"]["state"]):
        assert x.tobytes() == y.tobytes()


def test_train_charlm_on_two_ranks_is_the_single_process_run(mpi: None, tmp_path: Path, corpus: Path) -> None:
    """The same held-out figure and (float32) the same parameters as one process with the whole batch."""
    one = _charlm(tmp_path, None, "one.npz", "--steps", "4")
    two = _charlm(tmp_path, 2, "two.npz", "--steps", "4")
    held_out = [line.split("held-out")[1] for line in (one.stdout + two.stdout).splitlines() if "held-out" in line]
    assert len(held_out) == 2 and held_out[0] == held_out[1]
    a, b = minirnn.load(str(tmp_path / "one.npz")), minirnn.load(str(tmp_path / "two.npz"))
    for name in a["model"]:
        np.testing.assert_allclose(b["model"][name], a["model"][name], rtol=0, atol=1e-5, err_msg=name)


def test_a_batch_the_ranks_cannot_share_ends_every_rank(mpi: None, tmp_path: Path, corpus: Path) -> None:
    done = _launch(2, "-m", "minirnn", "train", "charlm", "--data", "corpus.txt", "--batch", "5", "--steps", "1",
                   cwd=tmp_path)
    assert done.returncode == 2
    assert "expected a multiple of the 2 ranks, got 5" in done.stderr


def test_the_distributed_bench_times_one_rank_against_two(mpi: None) -> None:
    from minirnn.bench import distributed as section
    record = section.run_distributed(section.DistributedConfig(seq_len=4, batch=4, embed=4, hidden=6, steps=2), 2)
    one, two = record["one_rank"], record["two_ranks"]
    assert (one["ranks"], one["threads"], two["ranks"], two["threads"]) == (1, 2, 2, 1)
    assert record["ratio"] == two["chars_per_s"] / one["chars_per_s"]
    assert two["allreduce_s"] > 0 and two["wait_after_s"] >= 0 and two["hidden"] <= 1
    assert two["gradient_bytes"] == 4 * sum(np.prod(s) for s in minirnn.charlm.state_shapes(
        two["vocab_size"], 4, 6, 2).values())
    assert "2 ranks x 1 thread(s)" in section.table(record)
    assert [t.status in ("PASS", "MISS") for t in section.targets(record)] == [True, True]


# ---------------------------------------------------------------- one process, no MPI needed

def test_one_process_is_a_world_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (distributed.rank(), distributed.world_size(), distributed.is_distributed()) == (0, 1, False)
    assert distributed.shard(6) == slice(0, 6)
    assert distributed.agree("x") == "x" and distributed.mean_across_ranks(2.5) == 2.5
    model = nn.Linear(3, 2)
    ddp = distributed.DistributedDataParallel(model)
    x = minirnn.Tensor(np.ones((4, 3), np.float32))
    assert np.array_equal(ddp(x).data, model(x).data)


def test_a_launch_of_several_ranks_without_mpi4py_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    distributed._world.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"one of 2 MPI ranks.*pip install 'minirnn\[mpi\]'"):
            distributed.rank()
    finally:
        distributed._world.cache_clear()


def test_a_pmix_launch_without_mpi4py_is_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMIX_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    distributed._world.cache_clear()
    try:
        assert (distributed.world_size(), distributed.is_distributed()) == (1, False)
    finally:
        distributed._world.cache_clear()


@pytest.mark.parametrize("shuffle", [False, True])
def test_the_sampler_gives_each_rank_a_disjoint_equal_shard(monkeypatch: pytest.MonkeyPatch, shuffle: bool) -> None:
    shards = []
    for r in range(3):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        monkeypatch.setattr(distributed, "world_size", lambda: 3)
        sampler = distributed.DistributedSampler(11, shuffle=shuffle, seed=5)
        sampler.set_epoch(2)
        shards.append(list(sampler))
        assert len(sampler) == 3
    seen = [i for s in shards for i in s]
    assert all(len(s) == 3 for s in shards) and len(set(seen)) == 9 and set(seen) <= set(range(11))
    assert (shards == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]) != shuffle  # in order, strided, unless shuffled


def test_shard_refuses_a_batch_the_ranks_cannot_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ValueError, match="expected a multiple of the 2 ranks, got 5"):
        distributed.shard(5)


def test_post_accumulate_hooks_fire_when_a_leaf_is_done_while_backward_goes_on() -> None:
    """The last layer's hook runs before the first layer's gradient exists: what lets a
    data-parallel run send the last layer's gradients while backward works on the others."""
    first, last = nn.Linear(3, 4), nn.Linear(4, 2)
    seen = []
    last.weight.register_post_accumulate_grad_hook(
        lambda p: seen.append(("last", p.grad.copy(), first.weight.grad)))
    first.weight.register_post_accumulate_grad_hook(lambda p: seen.append(("first", p.grad.copy(), None)))
    x = minirnn.Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    (last(first(x).tanh()) ** 2).sum().backward()
    assert [s[0] for s in seen] == ["last", "first"]
    assert seen[0][2] is None  # the first layer's gradient did not exist yet
    np.testing.assert_array_equal(seen[0][1], last.weight.grad)
    np.testing.assert_array_equal(seen[1][1], first.weight.grad)


def test_post_accumulate_hook_sees_the_summed_gradient_of_a_reused_leaf() -> None:
    w = minirnn.Tensor(np.array([2.0]), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.copy()))
    (w * 3.0 + w * w).sum().backward()  # d/dw = 3 + 2w = 7, from two uses
    assert len(seen) == 1 and seen[0][0] == 7.0


def test_post_accumulate_hooks_only_on_leaves_that_require_grad() -> None:
    w = minirnn.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="expected a leaf that requires grad.*output of an op"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        minirnn.Tensor(np.ones(2)).register_post_accumulate_grad_hook(lambda p: None)


def test_buckets_follow_reverse_parameter_order_and_size() -> None:
    model = nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 10))
    params = list(model.parameters())
    buckets = distributed._buckets(params, bucket_bytes=20_000)
    # bias 1, weight 1 (4 000 B) and bias 0 fill the first; weight 0 (40 000 B) gets one of its own
    assert [[id(p) for p in b.params] for b in buckets] == [[id(p) for p in params[:0:-1]], [id(params[0])]]
