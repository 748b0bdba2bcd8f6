"""`peftbench methods`: the tasks and methods this install knows, and what each method can do."""

from peftbench.cli.app import app, console, fail
from peftbench.cli.output import CsvOption, JsonOption, to_stdout
from peftbench.errors import PeftbenchError


def _listing(title: str, records: list[dict], headers: dict[str, str]):
    """A table of names and words (no numbers): each header and the record key it shows."""
    from peftbench.results.tables import Column, FitTable

    columns = [Column(header, [r[key] for r in records], name=True) for header, key in headers.items()]
    return FitTable(columns, title=title)


@app.command()
def methods(json_out: JsonOption = None, csv_out: CsvOption = None) -> None:
    """List the methods and tasks. A fresh classification head is trained by every method."""
    from peftbench.cli import capabilities as can
    from peftbench.cli.output import write_figures
    from peftbench.tasks import TASKS

    try:
        piped = to_stdout(json_out, csv_out)
    except PeftbenchError as exc:
        fail(exc)
    tasks = [{"kind": "task", "name": name, "summary": TASKS.get(name).summary} for name in TASKS]
    methods_ = can.method_records()
    if not piped:
        console.print(_listing("tasks", tasks, {"name": "name", "what": "summary"}))
        title = "methods (classification: every method also trains the fresh head)"
        shown = {"name": "name", "trains": "summary", "saved as": "saved_as"}
        console.print(_listing(title, methods_, shown))
        shown = {header: header for header in can.HEADERS}
        console.print(_listing("what each method can do (docs/methods.md)", can.shown_rows(), shown))
    write_figures(json_out, csv_out, {"tasks": tasks, "methods": methods_}, tasks + methods_)
