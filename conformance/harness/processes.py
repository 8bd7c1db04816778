"""Child processes of the harness: spawned in their own process group, output captured to files,
readiness learnt by polling those files with a deadline, and the whole group killed at the end.

Output goes to files, not pipes: a chatty child can never block on a full pipe, and the files stay
in the run's output dir for the report.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .polling import Deadline, pause

TAIL_BYTES = 4000


class ManagedProcess:
    """One spawned command; ``stdout``/``stderr`` are files under ``log_dir``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            # start_new_session: the child leads its own process group, so stop() reaches its children too.
            self.popen = subprocess.Popen(  # noqa: S603 - argv comes from the manifest the user gave
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(env) if env is not None else None,
                cwd=cwd, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, which: str = "stderr") -> str:
        path = self.stderr_path if which == "stderr" else self.stdout_path
        data = path.read_bytes()[-TAIL_BYTES:]
        return data.decode("utf-8", errors="replace").strip()

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns the exit code."""
        if self.popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=grace)
        # The leader may be gone while children of its group live on: the group gets SIGKILL anyway.
        self._signal_group(signal.SIGKILL)
        return self.popen.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait_for_output(self, predicate, *, timeout: float, interval: float = 0.05, what: str):
        """Poll stdout until ``predicate(text)`` returns a truthy value; stop early if the process exits.

        Returns the value, or raises :class:`ProcessExited` / :class:`ProcessNotReady`.
        """
        deadline = Deadline.after(timeout)
        while True:
            value = predicate(self.stdout_text())
            if value:
                return value
            if not self.running():
                value = predicate(self.stdout_text())  # it may have printed and exited at once
                if value:
                    return value
                raise ProcessExited(self, what)
            if deadline.expired():
                raise ProcessNotReady(self, what, timeout)
            pause(min(interval, deadline.remaining()))


class ProcessExited(RuntimeError):
    def __init__(self, process: ManagedProcess, what: str) -> None:
        super().__init__(
            f"{process.name} exited with code {process.returncode} before {what}; stderr: {process.tail() or '(empty)'}"
        )
        self.process = process


class ProcessNotReady(TimeoutError):
    def __init__(self, process: ManagedProcess, what: str, timeout: float) -> None:
        super().__init__(
            f"{process.name} did not produce {what} within {timeout:g}s; stderr: {process.tail() or '(empty)'}"
        )
        self.process = process
