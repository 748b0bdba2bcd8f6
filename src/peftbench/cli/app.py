"""The typer app every command registers on, its console, and how a command fails."""

import os

import typer
from rich.console import Console

from peftbench.errors import PeftbenchError

app = typer.Typer(
    help="Compare fine-tuning methods on the same task: quality and cost, side by side.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _console() -> Console:
    """At a terminal, its own width (tables fit it, see peftbench.results.tables); elsewhere (a pipe, a
    log) the width COLUMNS gives, else 150 columns, wide enough for most tables to keep their table layout."""
    if Console().is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return Console()
    return Console(width=150)


console = _console()
SET_HELP = "Override any config key, e.g. --set training.epochs=1 (repeatable)"


def fail(exc: PeftbenchError) -> None:
    """Print the one-line error and exit with status 2 (128 + signal number when interrupted)."""
    console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(getattr(exc, "exit_code", 2))
