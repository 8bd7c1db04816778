"""The steps of docs/vendor-guide.md, as marked there, and a runner that follows them literally.

A marker is an HTML comment right before a fenced block (or alone, for ``stop``):

* ``<!-- guide: run -->``: run each line of the block as a command; ``exit=0,1`` lists the exit
  codes that count as success (default 0);
* ``<!-- guide: file=NAME -->``: write the block to NAME;
* ``<!-- guide: serve -->``: start the block's one command as a server that keeps running;
* ``<!-- guide: stop -->``: stop that server (the reader's Ctrl-C).

The only substitutions the runner makes are the ones the test is allowed: free ports for the
guide's fixed ports, and a temporary working folder.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "vendor-guide.md"
# The fixed ports of the guide: the reference address, the example server's MIMI and control API.
GUIDE_PORTS = (7443, 8443, 8480)
KINDS = ("run", "file", "serve", "stop")

_MARKER = re.compile(r"^<!--\s*guide:\s*(?P<kind>[a-z]+)(?:=(?P<name>\S+))?(?P<args>[^>]*?)\s*-->\s*$")
_FENCE = re.compile(r"^```")


class GuideError(AssertionError):
    """The guide's markers are malformed, or a step of the guide did not do what the guide says."""


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str  # one of KINDS
    line: int  # of the marker in the guide, for messages
    text: str = ""  # the fenced block's content
    name: str | None = None  # file=NAME
    exit_codes: tuple[int, ...] = (0,)

    @property
    def commands(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def parse_guide(text: str) -> list[Step]:
    """The marked steps of the guide, in order."""
    lines = text.splitlines()
    steps = []
    index = 0
    while index < len(lines):
        match = _MARKER.match(lines[index].strip())
        if match is None:
            index += 1
            continue
        kind, where = match.group("kind"), index + 1
        if kind not in KINDS:
            raise GuideError(f"docs/vendor-guide.md:{where}: unknown guide marker {kind!r}")
        args = dict(part.split("=", 1) for part in match.group("args").split() if "=" in part)
        exit_codes = tuple(int(code) for code in args.get("exit", "0").split(","))
        if kind == "stop":
            steps.append(Step(kind, where))
            index += 1
            continue
        if kind == "file" and not match.group("name"):
            raise GuideError(f"docs/vendor-guide.md:{where}: a file marker needs file=NAME")
        index += 1
        while index < len(lines) and not lines[index].strip():
            index += 1
        if index >= len(lines) or not _FENCE.match(lines[index]):
            raise GuideError(f"docs/vendor-guide.md:{where}: the {kind} marker is not followed by a fenced block")
        body = []
        index += 1
        while index < len(lines) and not _FENCE.match(lines[index]):
            body.append(lines[index])
            index += 1
        if index >= len(lines):
            raise GuideError(f"docs/vendor-guide.md:{where}: unterminated fenced block")
        index += 1
        steps.append(Step(kind, where, "\n".join(body) + "\n", match.group("name"), exit_codes))
    return steps


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def substitute_ports(text: str, ports: Mapping[int, int]) -> str:
    for fixed, free in ports.items():
        text = re.sub(rf"\b{fixed}\b", str(free), text)
    return text


@dataclasses.dataclass
class CommandResult:
    command: str
    returncode: int
    output: str
    seconds: float


class Server:
    """A ``serve`` step: its own process group, output to a log file, stopped by the whole group."""

    def __init__(self, argv: list[str], cwd: Path, env: Mapping[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_until(self, ready: re.Pattern[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.search(self.output()):
                return
            if self.process.poll() is not None:
                raise GuideError(f"the server exited with code {self.process.returncode}: {self.output()[-2000:]}")
            time.sleep(0.1)
        raise GuideError(f"the server printed no {ready.pattern!r} within {timeout:.0f} s: {self.output()[-2000:]}")

    def stop(self, grace: float = 10.0) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self._log_file.close()


class GuideRunner:
    """Follows the steps in ``workdir`` with the suite's commands on ``PATH``."""

    def __init__(self, workdir: Path, bin_dir: Path, ports: Mapping[int, int], *, command_timeout: float) -> None:
        self.workdir = workdir
        self.ports = dict(ports)
        self.command_timeout = command_timeout
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MIMI_CONFORMANCE_", "PYTEST_"))}
        self.env = {**inherited, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONUNBUFFERED": "1"}
        self.server: Server | None = None
        self.results: list[CommandResult] = []

    def text(self, step: Step) -> str:
        return substitute_ports(step.text, self.ports)

    def run(self, step: Step) -> list[CommandResult]:
        results = []
        for line in substitute_ports("\n".join(step.commands), self.ports).splitlines():
            started = time.monotonic()
            try:
                done = subprocess.run(shlex.split(line), cwd=self.workdir, env=self.env, capture_output=True,
                                      text=True, timeout=self.command_timeout, start_new_session=True)
            except subprocess.TimeoutExpired as exc:
                raise GuideError(f"`{line}` did not end within {self.command_timeout:.0f} s") from exc
            result = CommandResult(line, done.returncode, done.stdout + done.stderr, time.monotonic() - started)
            results.append(result)
            self.results.append(result)
            if done.returncode not in step.exit_codes:
                raise GuideError(f"docs/vendor-guide.md:{step.line}: `{line}` exited {done.returncode} "
                                 f"(expected {list(step.exit_codes)}):\n{result.output[-4000:]}")
        return results

    def write(self, step: Step) -> Path:
        assert step.name is not None
        path = self.workdir / step.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text(step), encoding="utf-8")
        return path

    def serve(self, step: Step, ready: re.Pattern[str], timeout: float) -> Server:
        commands = substitute_ports("\n".join(step.commands), self.ports).splitlines()
        if len(commands) != 1:
            raise GuideError(f"docs/vendor-guide.md:{step.line}: a serve block holds one command, not {commands}")
        self.server = Server(shlex.split(commands[0]), self.workdir, self.env, self.workdir / "server.log")
        self.server.wait_until(ready, timeout)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
