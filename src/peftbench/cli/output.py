"""--json and --csv: a command's figures, whole and without markup, written to a file or, given `-`, to
stdout in place of the table (so a pipe gets nothing else)."""

import csv
import io
import json
import math
from pathlib import Path
from typing import Annotated

import typer

from peftbench.errors import PeftbenchError

JsonOption = Annotated[
    Path | None,
    typer.Option(
        "--json", help="Write the figures as JSON to this file ('-': to stdout, instead of the table)"
    ),
]
CsvOption = Annotated[
    Path | None,
    typer.Option("--csv", help="Write the rows as CSV to this file ('-': to stdout, instead of the table)"),
]


def to_stdout(*paths: Path | None) -> bool:
    """Whether a figure goes to stdout (`-`), where the table would otherwise be printed."""
    taken = [p for p in paths if p is not None and str(p) == "-"]
    if len(taken) > 1:
        raise PeftbenchError("--json - and --csv - both write to stdout; send one of them to a file")
    return bool(taken)


def _plain(value):
    """JSON has no NaN or infinity: a figure that is not finite is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def json_text(payload) -> str:
    return json.dumps(_plain(payload), indent=2, allow_nan=False) + "\n"


def flat(record: dict, prefix: str = "") -> dict:
    """One CSV row: nested records as dotted keys (memory.weights), lists as JSON."""
    row = {}
    for key, value in record.items():
        if isinstance(value, dict):
            row |= flat(value, f"{prefix}{key}.")
        else:
            row[f"{prefix}{key}"] = json.dumps(_plain(value)) if isinstance(value, list | tuple) else value
    return row


def csv_text(records: list[dict], names: list[str] | None = None) -> str:
    """The records as CSV with a header: `names`, else every key in the order first seen."""
    rows = [flat(r) for r in records]
    names = names or list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write(path: Path | None, text: str) -> None:
    """`text` to `path`, or to stdout when `path` is `-`; nothing when no path was given."""
    from peftbench.results.results import redact_text, write_atomic

    if path is None:
        return
    if str(path) == "-":
        typer.echo(redact_text(text), nl=False)
    else:
        write_atomic(path, text)


def write_figures(json_out: Path | None, csv_out: Path | None, payload, records: list[dict]) -> None:
    write(json_out, json_text(payload))
    write(csv_out, csv_text(records))
