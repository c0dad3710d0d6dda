"""``train charlm``: periodic checkpoints, SIGINT/SIGTERM, ``--resume`` ends bit for bit where the
uninterrupted run does, and the NaN guard (issue 24, items 2 and 3)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import minirnn
from minirnn import cli
from minirnn.cli import main

TEXT = "abcabcabd " * 60  # 570 characters to train on: an epoch is 9 steps of --seq-len 16 --batch 4
TINY = ["--hidden", "8", "--embed", "4", "--layers", "1", "--batch", "4", "--seq-len", "16", "--lr", "0.02",
        "--samples", "0", "--quiet"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def train(data, out, *args):
    return main(["train", "charlm", "--data", data, "--out", str(out), *TINY, *args])


def weights(path):
    return minirnn.load(path)["model"]


def assert_bitwise_equal(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].tobytes() == b[name].tobytes(), name


@pytest.fixture
def uninterrupted(data, tmp_path):
    """``steps -> the weights of a run of that many steps never interrupted``."""
    def run(steps):
        out = tmp_path / f"whole-{steps}.npz"
        assert train(data, out, "--steps", str(steps)) == 0
        return weights(out)
    return run


@pytest.mark.parametrize("first", [1, 5, 9, 13])  # (9: the end of an epoch, where the state resets)
def test_resume_is_bitwise_equal_to_the_uninterrupted_run(data, tmp_path, uninterrupted, first):
    ckpt = tmp_path / "c.npz"
    assert train(data, ckpt, "--steps", str(first)) == 0
    saved = minirnn.load(ckpt)["train"]
    assert saved["step"] == first and saved["position"] == ((first - 1) % 9 + 1) * 16 and saved["optimizer"]["state"]
    assert train(data, ckpt, "--resume", str(ckpt), "--steps", "20") == 0
    assert minirnn.load(ckpt)["train"]["step"] == 20
    assert_bitwise_equal(weights(ckpt), uninterrupted(20))


def test_the_checkpoint_is_json_and_arrays_and_resume_refuses_other_data(data, tmp_path, capsys):
    ckpt = tmp_path / "c.npz"
    assert train(data, ckpt, "--steps", "3") == 0
    part = minirnn.load(ckpt)["train"]
    assert set(part) == {"options", "data", "step", "position", "state", "optimizer", "guard", "rng", "elapsed_s"}
    assert part["rng"]["bit_generator"] == "PCG64" and part["guard"] == {"max_in_a_row": 5, "skipped": 0,
                                                                          "in_a_row": 0}
    assert part["options"] == {"seq_len": 16, "batch": 4, "lr": 0.02, "clip": 1.0, "val_fraction": 0.05,
                               "seed": 0, "max_nonfinite": 5}
    other = tmp_path / "other.txt"
    other.write_text(TEXT.replace("d", "e"), encoding="utf-8")
    assert main(["train", "charlm", "--data", str(other), "--resume", str(ckpt), "--out", str(ckpt),
                 "--steps", "5", "--quiet"]) == 2
    assert "--resume: the data differs from the checkpoint's" in capsys.readouterr().err
    minirnn.save({"a": np.zeros(1)}, tmp_path / "plain.npz")
    assert train(data, ckpt, "--resume", str(tmp_path / "plain.npz"), "--steps", "5") == 2
    assert "--resume: expected a checkpoint written by 'train charlm'" in capsys.readouterr().err
    tampered = minirnn.load(ckpt)
    tampered["train"]["options"]["lr"] = float("inf")
    minirnn.save(tampered, tmp_path / "bad.npz")
    assert train(data, ckpt, "--resume", str(tmp_path / "bad.npz"), "--steps", "5") == 2
    assert "--resume: train: options: lr: got inf" in capsys.readouterr().err
    tampered = minirnn.load(ckpt)
    tampered["train"]["state"][0] = np.zeros((1, 4, 9), np.float32)
    minirnn.save(tampered, tmp_path / "bad.npz")
    assert train(data, ckpt, "--resume", str(tmp_path / "bad.npz"), "--steps", "5") == 2
    assert "checkpoint: train: state: expected the LSTM's (h, c), two float32 arrays of shape (1, 4, 8)" in \
        capsys.readouterr().err


def test_checkpoints_are_periodic_by_default(data, tmp_path):
    args = cli.parser().parse_args(["train", "charlm"])
    assert args.checkpoint_minutes == 5 and args.checkpoint_steps == 0 and args.max_nonfinite == 5
    ckpt = tmp_path / "c.npz"
    seen = []
    real_save = cli.save
    cli_save = lambda obj, path: (seen.append(obj["train"]["step"]), real_save(obj, path))  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "save", cli_save)
        assert train(data, ckpt, "--steps", "7", "--checkpoint-steps", "3") == 0
        assert seen == [3, 6, 7]
        seen.clear()
        assert train(data, ckpt, "--steps", "4", "--checkpoint-minutes", "1e-9") == 0  # due after every step
        assert seen == [1, 2, 3, 4, 4]


def run_module(*args):
    return subprocess.Popen([sys.executable, "-m", "minirnn", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(proc, path, timeout=60.0):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "no checkpoint appeared"
        time.sleep(0.01)


@pytest.mark.parametrize("how,code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, 130),
                                      (signal.SIGTERM, 143)])
def test_a_killed_run_resumes_bitwise_equal(data, tmp_path, uninterrupted, how, code):
    """A real process stopped after its first periodic checkpoint (SIGKILL: no chance to save;
    SIGINT/SIGTERM: it saves the step it was on and exits 128 + the signal), then resumed."""
    ckpt = str(tmp_path / "c.npz")
    proc = run_module("train", "charlm", "--data", data, "--out", ckpt, *TINY, "--steps", "1000000",
                      "--checkpoint-steps", "4")
    try:
        wait_for_checkpoint(proc, ckpt)
        time.sleep(0.05)
        proc.send_signal(how)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    if how != signal.SIGKILL:
        assert f"{signal.Signals(how).name}: stopped after step" in err and f"--resume {ckpt}" in err
    step = minirnn.load(ckpt)["train"]["step"]
    assert step >= 4 and (how != signal.SIGKILL or step % 4 == 0)
    assert train(data, ckpt, "--resume", ckpt, "--steps", str(step + 6)) == 0
    assert_bitwise_equal(weights(ckpt), uninterrupted(step + 6))


def test_a_signal_while_the_ranks_agree_is_not_lost(data, tmp_path, monkeypatch, capsys):
    """SIGINT arriving inside distributed.agree, after the loop read "no signal" but before it
    stored what the ranks agreed: the stop must stand (it used to be overwritten, and the run
    went on to the end as if no signal had come)."""
    real_agree = cli.distributed.agree
    sent = []

    def agree_then_signal(value, root=0):
        if isinstance(value, tuple) and not sent:  # the loop's (go, signal) decision, its first
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs before this call returns
        return real_agree(value, root)

    monkeypatch.setattr(cli.distributed, "agree", agree_then_signal)
    assert train(data, tmp_path / "c.npz", "--steps", "20") == 130 and sent
    err = capsys.readouterr().err
    assert "SIGINT: stopped after step" in err
    assert minirnn.load(tmp_path / "c.npz")["train"]["step"] < 20


def test_training_into_nan_stops_and_keeps_the_good_checkpoint(data, tmp_path, capsys):
    """The issue's command: an all-NaN model used to be saved over the good one, exit 0."""
    ckpt = tmp_path / "c.npz"
    assert train(data, ckpt, "--steps", "3") == 0
    before = ckpt.read_bytes()
    capsys.readouterr()
    assert train(data, ckpt, "--steps", "20", "--lr", "1e308") == cli.EXIT_NONFINITE == 3
    err = capsys.readouterr().err
    assert "training stopped at step 2: the parameters are not finite" in err and "not written" in err
    assert ckpt.read_bytes() == before


def test_non_finite_updates_are_skipped_counted_and_stop_after_max_in_a_row(data, tmp_path, capsys, monkeypatch):
    real = cli.training_loss
    calls = []

    def poisoned(logits, targets):  # the loss of updates 3 and 4 (0-based 2, 3) is NaN; of 8.. too
        calls.append(1)
        loss = real(logits, targets)
        return loss * float("nan") if len(calls) in (3, 4) or len(calls) >= 8 else loss

    monkeypatch.setattr(cli, "training_loss", poisoned)
    ckpt = tmp_path / "c.npz"
    assert train(data, ckpt, "--steps", "6") == 0
    out = capsys.readouterr()
    assert "step 3: skipped the update" in out.err and "step 4: skipped the update" in out.err
    assert "skipped 2 non-finite updates" in out.out
    assert minirnn.load(ckpt)["train"]["guard"] == {"max_in_a_row": 5, "skipped": 2, "in_a_row": 0}
    calls.clear()
    assert train(data, ckpt, "--steps", "30", "--max-nonfinite", "3", "--checkpoint-steps", "2") == 3
    err = capsys.readouterr().err
    assert "training stopped at step 10: 3 updates in a row had a non-finite loss or gradient norm" in err
    assert f"{ckpt} keeps the checkpoint of step 8" in err  # (skipped, but the parameters are finite)
    assert minirnn.load(ckpt)["train"]["guard"] == {"max_in_a_row": 3, "skipped": 3, "in_a_row": 1}


def test_a_model_too_big_for_memory_is_refused_before_it_is_built(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_physical_memory", lambda: 2**30)
    monkeypatch.setattr(cli, "CharLM", lambda *a, **k: pytest.fail("the model must not be built"))
    assert train(data, tmp_path / "c.npz", "--steps", "1", "--embed", "100000000") == 2
    out = capsys.readouterr()
    assert "--embed/--hidden/--layers: expected a model that fits in memory" in out.err
    assert "trained" not in out.out and not (tmp_path / "c.npz").exists()
