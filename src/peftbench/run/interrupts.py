"""Stopping cleanly: SIGTERM (preemption) or SIGINT (Ctrl-C) reaches the running worker once, the run is
marked interrupted, and a worker whose parent died stops instead of training on alone."""

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import psutil

from peftbench.errors import PeftbenchError

PARENT_ENV = "PEFTBENCH_PARENT_PID"  # the grid process a worker belongs to
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(PeftbenchError):
    """The grid stopped on a signal; its exit status is the shell's 128 + signal number."""

    def __init__(self, signum: int, where: str):
        self.exit_code = 128 + signum
        super().__init__(
            f"interrupted by {signal.Signals(signum).name} during {where}; the run is marked interrupted, "
            "and `peftbench run` on the same config again finishes the experiment (complete runs are kept)"
        )


class SignalGuard:
    """In the grid process: remembers the first stop signal and forwards it to the running worker; with
    no worker running (model loading, inline runs) the signal interrupts this process instead."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.child_pid: int | None = None  # the worker running now, if any
        self._previous: dict = {}

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = self.received or signum
        if self.child_pid is not None and _signal_sent(self.child_pid, signum):
            return
        if first:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def forwarding_to(self, pid: int) -> Iterator[None]:
        """While the block runs, stop signals go to the worker process `pid`."""
        self.child_pid = pid
        try:
            yield
        finally:
            self.child_pid = None

    def run(self, command: list[str], log: Path | None = None) -> int:
        """Run a worker in its own process group, so a terminal's Ctrl-C reaches it once (from here); its
        stdout and stderr go to `log` when given (created, or replaced)."""
        environment = {**os.environ, PARENT_ENV: str(os.getpid())}
        with contextlib.ExitStack() as files:
            output = None
            if log is not None:
                log.parent.mkdir(parents=True, exist_ok=True)
                output = files.enter_context(open(log, "wb"))
            child = subprocess.Popen(
                command, env=environment, process_group=0, stdout=output, stderr=output and subprocess.STDOUT
            )
            with self.forwarding_to(child.pid):
                return child.wait()


def _signal_sent(pid: int, signum: int) -> bool:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # it has exited (a zombie still takes the signal, harmlessly)
        return False
    return True


def _stop(signum: int, frame: FrameType | None) -> None:
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)  # one interruption; a second signal must not cut the cleanup
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _gone(grid: int, parent: int) -> bool:
    """The grid process is gone or a zombie, or this process was re-parented (its parent died). A forked
    worker's parent is the fork server, which outlives the grid while its workers run."""
    if os.getppid() != parent:
        return True
    try:
        return psutil.Process(grid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _watch_parent(grid: int, parent: int, every: float) -> None:
    while not _gone(grid, parent):
        time.sleep(every)
    os.kill(os.getpid(), signal.SIGTERM)


def stop_on_signals(poll_seconds: float = 1.0) -> None:
    """In a worker: a stop signal becomes KeyboardInterrupt (the run folder marks it interrupted), and the
    worker stops when the grid process that started it is gone (even after kill -9)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop)
    grid = os.environ.get(PARENT_ENV)
    if grid:
        watch = (int(grid), os.getppid(), poll_seconds)
        threading.Thread(target=_watch_parent, args=watch, daemon=True).start()
