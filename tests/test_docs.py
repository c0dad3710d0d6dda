"""Every snippet in docs/ runs, every shown output is what the snippet prints, every C++ quote is real.

Conventions in docs/*.md:

* A ```python block is executed, in order, in one namespace per file (later blocks see earlier
  names), in a temporary working directory. Any exception fails the test.
* A ```output block right after a ```python block is that block's exact stdout (trailing spaces
  ignored): the rendering in the docs cannot drift from what the code prints.
* An ``.svg`` a snippet writes that also exists in ``docs/img/`` must carry the same labels (the
  picture in the docs shows what the code draws now).
* A ```cpp block whose first line is ``// from csrc/<file>`` quotes that file: its lines (indent
  ignored) must occur in the file in order, contiguous except where a ``// ...`` line elides some.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, text, first line number) for every fenced block of a Markdown file."""
    source = path.read_text()
    return [(m.group(1), m.group(2), source.count("\n", 0, m.start(2)) + 1) for m in FENCE.finditer(source)]


def strip_lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip().splitlines()]


def test_docs_exist():
    assert DOCS, "docs/*.md is empty"
    assert any(lang == "python" for path in DOCS for lang, _, _ in blocks(path))


#: Pages whose printed output shows the fused kernels at work (a fused cell step is one node).
NEEDS_EXTENSION = {"02-bptt.md"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.extension) if p.name in NEEDS_EXTENSION else p
                                  for p in DOCS], ids=[p.name for p in DOCS])
def test_python_snippets_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs.{path.stem}"}
    found = blocks(path)
    for k, (lang, text, line) in enumerate(found):
        if lang != "python":
            continue
        stdout = io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout):
                exec(compile(text, f"{path.name}:{line}", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # report where in the docs, then the original traceback
            raise AssertionError(f"{path.name}: the python block at line {line} raised "
                                 f"{type(exc).__name__}: {exc}") from exc
        if k + 1 < len(found) and found[k + 1][0] == "output":
            shown, shown_line = found[k + 1][1], found[k + 1][2]
            assert strip_lines(stdout.getvalue()) == strip_lines(shown), (
                f"{path.name}: the output block at line {shown_line} is not what the python block at line "
                f"{line} prints; it printed:\n{stdout.getvalue()}")
    for svg in tmp_path.glob("*.svg"):  # a picture the snippets drew (Graphviz installed) that docs/img shows
        shown_svg = ROOT / "docs" / "img" / svg.name
        if shown_svg.exists():
            assert svg_labels(svg) == svg_labels(shown_svg), (
                f"docs/img/{svg.name} is not what {path.name} draws now: regenerate it")


def svg_labels(path: Path) -> list[str]:
    """The text of every label in a Graphviz SVG, sorted: what it says, whatever the layout engine."""
    return sorted(re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text()))


def quoted_chunks(text: str) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    for line in text.splitlines()[1:]:
        if line.strip() == "// ...":
            chunks.append([])
        elif line.strip():
            chunks[-1].append(line.strip())
    return [c for c in chunks if c]


CPP_QUOTES = [(path, text, line) for path in DOCS for lang, text, line in blocks(path)
              if lang == "cpp" and text.startswith("// from csrc/")]


@pytest.mark.parametrize("path, text, line", CPP_QUOTES,
                         ids=[f"{p.name}:{n}" for p, _, n in CPP_QUOTES])
def test_cpp_quotes_match_csrc(path: Path, text: str, line: int):
    source_name = text.splitlines()[0].removeprefix("// from ").strip()
    source = [s.strip() for s in (ROOT / source_name).read_text().splitlines() if s.strip()]
    start = 0
    assert quoted_chunks(text), f"{path.name}:{line}: the quote is empty"
    for chunk in quoted_chunks(text):
        at = next((i for i in range(start, len(source) - len(chunk) + 1) if source[i:i + len(chunk)] == chunk), None)
        assert at is not None, f"{path.name}:{line}: this quote is not (any longer) in {source_name}:\n" + \
            "\n".join(chunk)
        start = at + len(chunk)


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_every_block_is_checked(path: Path):
    """No snippet escapes the checks above: each fenced block is run (python), compared (output,
    right after a python block) or verified against csrc/ (cpp with a ``// from csrc/`` line)."""
    found = blocks(path)
    assert path.read_text().count("```") == 2 * len(found), f"{path.name}: an unclosed or unparsed fence"
    for k, (lang, text, line) in enumerate(found):
        assert lang in ("python", "output", "cpp"), f"{path.name}:{line}: a ```{lang} block is not checked"
        if lang == "output":
            assert k > 0 and found[k - 1][0] == "python", f"{path.name}:{line}: output block without python"
        if lang == "cpp":
            assert text.startswith("// from csrc/"), f"{path.name}:{line}: C++ block without '// from csrc/<file>'"
