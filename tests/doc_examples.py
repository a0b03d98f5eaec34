"""Run a Markdown document's examples in order, as a reader would: its ```python blocks in one namespace, and the
``s2sim ...`` lines of its ```bash blocks as commands, all in one working folder that ``cd`` lines change.

A command line's comment may state its exit status (``# exit 1: ...``); otherwise it must exit 0. A block right
after an HTML comment ``<!-- not run: REASON -->`` is skipped (code that needs a board). A shell line that is not
an ``s2sim`` command or a ``cd`` must be one the caller lists as not run, with its reason, so a new kind of
command cannot slip into a document untested.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->$")
_EXIT = re.compile(r"\bexit (\d+)\b")
SHELL_LANGUAGES = ("bash", "console", "sh", "shell")


@dataclass
class Block:
    language: str
    text: str
    line: int  # of the first line of code, 1-based
    skip: str | None  # the reason it is not run, or None


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of ``path`` in document order."""
    lines = Path(path).read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = _SKIP.match(before)
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{path}:{i + 1}: code block never closed")
        out.append(
            Block(match.group(1), "\n".join(lines[start:end]) + "\n", start + 1, skip.group(1) if skip else None)
        )
        i = end + 1
    return out


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _split_comment(line: str) -> tuple[str, str]:
    """(command, comment) of a shell line; a ``#`` starts a comment only after whitespace, outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i + 1 :].strip()
    return line.strip(), ""


class DocumentRun:
    """Runs the examples of one document in ``workdir``; see the module docstring."""

    def __init__(self, path: Path, workdir: Path, not_run: Mapping[str, str], timeout: float = 120.0) -> None:
        self.path = Path(path)
        self.cwd = Path(workdir)
        self.not_run = dict(not_run)
        self.timeout = timeout
        self.namespace: dict = {"__name__": "__doc_example__"}
        self.ran = {"python": 0, "command": 0}
        self.skipped: list[str] = []
        bindir = str(Path(sys.executable).parent)
        self.env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "MPLBACKEND": "Agg"}

    def run(self) -> DocumentRun:
        for block in blocks(self.path):
            where = f"{self.path.name}:{block.line}"
            if block.skip:
                self.skipped.append(f"{where}: {block.skip}")
            elif block.language == "python":
                self._python(block, where)
            elif block.language in SHELL_LANGUAGES:
                self._shell(block)
        return self

    def _python(self, block: Block, where: str) -> None:
        code = compile(block.text, where, "exec")
        with _cwd(self.cwd):
            exec(code, self.namespace)
        self.ran["python"] += 1

    def _shell(self, block: Block) -> None:
        for offset, raw in enumerate(block.text.splitlines()):
            command, comment = _split_comment(raw)
            if not command:
                continue
            where = f"{self.path.name}:{block.line + offset}"
            argv = shlex.split(command)
            if argv[0] == "cd" and len(argv) == 2:
                self.cwd = (self.cwd / argv[1]).resolve()
                assert self.cwd.is_dir(), f"{where}: cd into {self.cwd}, which does not exist"
            elif argv[0] == "s2sim":
                self._command(argv, comment, where)
            else:
                reason = next((why for prefix, why in self.not_run.items() if command.startswith(prefix)), None)
                assert reason is not None, f"{where}: {command!r} is neither run nor listed as not run"
                self.skipped.append(f"{where}: {command} ({reason})")

    def _command(self, argv: list[str], comment: str, where: str) -> None:
        match = _EXIT.search(comment)
        expected = int(match.group(1)) if match else 0
        proc = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=self.timeout)
        assert proc.returncode == expected, (
            f"{where}: {shlex.join(argv)} exited {proc.returncode}, the document says {expected}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
        self.ran["command"] += 1
        print(f"$ {shlex.join(argv)}\n{proc.stdout}{proc.stderr}", end="")  # shown by pytest -s or on failure
