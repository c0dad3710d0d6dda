"""README.md: its two commands are the ones CI runs, and its Python example runs and learns."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_the_readme_test_command() -> None:
    bash_blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    test_command = next(line for block in bash_blocks for line in block.splitlines() if "pytest" in line)
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command.strip() in [line.strip() for line in ci_lines]


def test_readme_example_runs_and_its_loss_falls() -> None:
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "onnxruntime" not in b]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), {})
    losses = [float(v) for v in re.findall(r"loss ([0-9.]+)", out.getvalue())]
    assert len(losses) == 3, out.getvalue()
    assert losses[-1] < losses[0] / 4, losses
