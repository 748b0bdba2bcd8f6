"""An inline run's output into its train.log: print, tqdm bars, warnings and the libraries' logging go
to the file while the run executes, and back where they were afterwards. (A subprocess worker's output
goes to the file as a whole: its stdout and stderr are the file.)"""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TextIO


def _stream_handlers() -> list[logging.StreamHandler]:
    """Every handler that writes to a stream rather than a file (transformers, datasets, peft, root)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    found = []
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if type(handler) is logging.StreamHandler and handler not in found:
                found.append(handler)
    return found


def _point(handler: logging.StreamHandler, stream: TextIO) -> TextIO:
    """setStream without its flush: the old stream may be closed (a test runner's capture)."""
    with handler.lock:
        previous, handler.stream = handler.stream, stream
    return previous


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's output to `path` (created, or replaced) for the duration of the block.
    Warnings are shown (once per place, as usual) through sys.stderr, so they land in the file too;
    a logging handler made inside the block (bound to the file) is pointed back at stderr after it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handlers = _stream_handlers()
    stderr = sys.stderr
    with open(path, "w", encoding="utf-8", buffering=1) as log:
        previous = [_point(handler, log) for handler in handlers]
        try:
            with redirect_stdout(log), redirect_stderr(log):
                yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                _point(handler, stream)
            for handler in _stream_handlers():
                if handler.stream is log:
                    _point(handler, stderr)
