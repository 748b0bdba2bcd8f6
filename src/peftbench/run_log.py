"""An inline run's output into its train.log: print, tqdm bars, warnings and the libraries' logging go
to the file while the run executes, and back where they were afterwards. (A subprocess worker's output
goes to the file as a whole: its stdout and stderr are the file.)"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path


def _stream_handlers() -> list[logging.StreamHandler]:
    """Every handler that writes to a stream rather than a file (transformers, datasets, peft, root)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    found = []
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if type(handler) is logging.StreamHandler and handler not in found:
                found.append(handler)
    return found


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's output to `path` (created, or replaced) for the duration of the block.
    Warnings are shown (once per place, as usual) through sys.stderr, so they land in the file too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handlers = _stream_handlers()
    with open(path, "w", encoding="utf-8", buffering=1) as log:
        previous = [handler.stream for handler in handlers]
        for handler in handlers:
            handler.setStream(log)
        try:
            with redirect_stdout(log), redirect_stderr(log):
                yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                handler.setStream(stream)
