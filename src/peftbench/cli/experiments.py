"""Commands that run and read experiments: run, train, compare, demo, report, validate."""

from pathlib import Path
from typing import Annotated

import typer

from peftbench.cli.app import SET_HELP, app, console, fail
from peftbench.cli.options import given, refuse_twice, refuse_unused
from peftbench.cli.output import CsvOption, JsonOption, json_text, to_stdout, write
from peftbench.errors import PeftbenchError


def print_warnings(lines: list[str], err: bool = False) -> None:
    """On stderr (`err`) when stdout carries --json/--csv output."""
    for line in lines:
        if err:
            typer.echo(f"warning: {line}", err=True)
        else:
            console.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)


def _print_table(directory: Path) -> None:
    from peftbench.report.compare import rich_table, rows

    table, names, warnings = rows(directory, "full")
    console.print(rich_table(table, names, "full"))
    print_warnings(warnings)


def _execute(config, force: bool = False, inline: bool = False, ray=None, verbose: bool = False) -> None:
    from peftbench.execution import wall_split
    from peftbench.execution.executor import run_grid
    from peftbench.report.compare import rich_samples, samples

    directory, failed = run_grid(
        config, force=force, inline=inline, console=console, ray=ray, verbose=verbose
    )
    _print_table(directory)
    merged = samples(directory, 2)
    if merged:
        console.print(rich_samples(merged))
    console.print(f"results in {directory}")
    for line in failed:
        console.print(f"[red]error:[/red] run {line}", highlight=False, soft_wrap=True)
    since = wall_split.process_started()
    console.print(wall_split.record(directory, since, parallel=ray is not None).line(), highlight=False)
    if failed:
        raise typer.Exit(1)


VERBOSE_HELP = "Stream each run's Trainer logs, progress bars and warnings here (default: its train.log)"
RAY_ONLY = {name: "add --executor ray, or drop it" for name in ("address", "cpus_per_run", "gpus_per_run")}


@app.command()
def run(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Experiment YAML")],
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    force: Annotated[bool, typer.Option(help="Redo runs that are already complete")] = False,
    inline: Annotated[
        bool, typer.Option(help="Run everything in this process (faster start; no crash isolation)")
    ] = False,
    executor: Annotated[
        str, typer.Option(help="local (one run after another) or ray (runs as Ray tasks)")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (ray://host:10001 or auto); default: a local Ray")
    ] = None,
    cpus_per_run: Annotated[float, typer.Option(help="Ray: CPUs each run asks for")] = 1,
    gpus_per_run: Annotated[float, typer.Option(help="Ray: GPUs each run asks for")] = 0,
    verbose: Annotated[bool, typer.Option(help=VERBOSE_HELP)] = False,
) -> None:
    """Run every method, sweep value, seed and baseline of an experiment file, then print the comparison.

    Each run executes in its own process (or Ray task); complete runs with the same config are skipped.
    A terminal shows one live table of the runs; a pipe gets one line per run start and end."""
    from peftbench.execution import warm_worker

    if executor == "local" and not inline and config.is_file():
        warm_worker.start_early()  # its imports run beside this process's own (reading the config's)
    from peftbench.config.config import apply_overrides
    from peftbench.config.files import check_schema, read_yaml

    try:  # a mistyped key fails here, before the registries' imports
        schema_checked = check_schema(apply_overrides(read_yaml(config), set_ or []))
    except PeftbenchError as exc:
        fail(exc)
    from peftbench.execution.launch import RayOptions
    from peftbench.inputs.experiment import check_with_registries

    try:
        if executor not in ("local", "ray"):
            raise PeftbenchError(f"--executor '{executor}' is not known; use local or ray")
        if executor != "ray":
            refuse_unused(ctx, RAY_ONLY, "without --executor ray")
        ray = RayOptions(address, cpus_per_run, gpus_per_run) if executor == "ray" else None
        _execute(check_with_registries(schema_checked), force, inline, ray, verbose)
    except PeftbenchError as exc:
        fail(exc)


# Each flag of `train` and the config key it writes.
TRAIN_FLAG_KEYS = {
    "model": "model",
    "dataset": "data.dataset",
    "method": "methods",
    "task": "task",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "lora_r": "methods",
    "lora_alpha": "methods",
    "data_fraction": "data.data_fraction",
    "name": "name",
    "output_dir": "output_dir",
    "seed": "seed",
}


@app.command()
def train(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="Alias (minilm, smollm2-135m), hub id or local path")],
    dataset: Annotated[str, typer.Option(help="drugscom, a hub id, or a local data file")],
    method: Annotated[str, typer.Option(help="Method name; see `peftbench methods`")] = "lora",
    task: Annotated[
        str,
        typer.Option(
            help="classification, causal_lm or generation (set data.prompt_template etc. via --set)"
        ),
    ] = "classification",
    epochs: Annotated[float, typer.Option()] = 3,
    batch_size: Annotated[int, typer.Option()] = 16,
    learning_rate: Annotated[float | None, typer.Option(help="Default: 2e-5 (full), 2e-4 (others)")] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank")] = None,
    lora_alpha: Annotated[int | None, typer.Option()] = None,
    data_fraction: Annotated[float, typer.Option()] = 1.0,
    name: Annotated[str | None, typer.Option(help="Experiment name (folder under output-dir)")] = None,
    output_dir: Annotated[str, typer.Option()] = "runs",
    seed: Annotated[int, typer.Option()] = 42,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Train one method from flags (no YAML needed)."""
    from peftbench.config.config import apply_overrides
    from peftbench.inputs.experiment import build_config

    options = {k: v for k, v in {"r": lora_r, "lora_alpha": lora_alpha}.items() if v is not None}
    raw = {
        "name": name or f"{Path(model).name}-{Path(dataset).stem}-{method}",
        "task": task,
        "model": model,
        "data": {"dataset": dataset, "data_fraction": data_fraction},
        "seed": seed,
        "output_dir": output_dir,
        "baselines": False,
        "training": {
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate or (2e-5 if method == "full" else 2e-4),
        },
        "methods": [{"method": method, **options}],
    }
    try:
        refuse_twice(ctx, set_, TRAIN_FLAG_KEYS)
        _execute(build_config(apply_overrides(raw, set_ or [])))
    except PeftbenchError as exc:
        fail(exc)


def _check_reference(ctx: typer.Context, directory: Path, reference: str) -> None:
    """A --reference that names no run or method would leave every delta out without a word."""
    from peftbench.results.run_folder import finished_results

    found = finished_results(directory)
    known = {r.get("cell") or r.get("run") for r in found} | {r.get("method", {}).get("name") for r in found}
    known.discard(None)
    if given(ctx, "reference") and known and reference not in known:
        raise PeftbenchError(
            f"--reference '{reference}' names no run or method under '{directory}'; "
            f"pick one of: {', '.join(sorted(known))}"
        )


@app.command()
def compare(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Experiment or runs folder")],
    reference: Annotated[str, typer.Option(help="Run or method the deltas are taken against")] = "full",
    markdown_out: Annotated[
        Path | None, typer.Option("--markdown", help="Also write a Markdown table here")
    ] = None,
    csv_out: CsvOption = None,
    json_out: JsonOption = None,
    samples: Annotated[int, typer.Option(help="Generated samples to show (generation tasks)")] = 3,
) -> None:
    """Print one table over the finished runs under DIRECTORY, and generated samples if any."""
    from peftbench.report import compare as comparison
    from peftbench.results.results import write_atomic

    try:
        _check_reference(ctx, directory, reference)
        piped = to_stdout(json_out, csv_out)
        table, names, warnings = comparison.rows(directory, reference)
        merged = comparison.samples(directory, samples)
        if not merged:
            refuse_unused(ctx, {"samples": "drop it"}, "here: only generation runs save samples, none did")
    except PeftbenchError as exc:
        fail(exc)
    if not piped:
        console.print(comparison.rich_table(table, names, reference))
    print_warnings(warnings, err=piped)
    if merged and not piped:
        console.print(comparison.rich_samples(merged))
    if markdown_out:
        write_atomic(markdown_out, comparison.markdown(table, names))
    write(csv_out, comparison.to_csv(table, names))
    payload = {"reference": reference, "columns": names, "rows": table, "warnings": warnings}
    write(json_out, json_text(payload))


@app.command()
def demo(
    quick: Annotated[
        bool, typer.Option(help="Smaller data and fewer methods: a first look in minutes")
    ] = False,
    output_dir: Annotated[str, typer.Option(help="Where the experiment folders go")] = "runs",
    verbose: Annotated[bool, typer.Option(help=VERBOSE_HELP)] = False,
) -> None:
    """Run the embedded default experiments (classification on minilm, generation on smollm2-135m)
    offline, write a report for each, and print their comparison tables and where the reports are."""
    from peftbench.execution.demo import run_demo
    from peftbench.execution.wall_split import process_started

    try:
        folders = run_demo(quick, output_dir, console, verbose, since=process_started())
        for folder in folders:
            _print_table(folder)
    except PeftbenchError as exc:
        fail(exc)
    for folder in folders:
        console.print(f"report: {folder / 'report.html'}  (also report.md, summary.csv)")


@app.command()
def report(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Experiment folder (runs/<name>)")],
    reference: Annotated[str, typer.Option(help="Run or method the others are tested against")] = "full",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: DIRECTORY)")] = None,
) -> None:
    """Write report.md, a self-contained report.html and summary.csv with plots and statistics."""
    from peftbench import report as reporting

    try:
        _check_reference(ctx, directory, reference)
        built = reporting.build(directory, reference)
    except PeftbenchError as exc:
        fail(exc)
    for path in reporting.write(built, out or directory):
        console.print(f"wrote {path}")


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Experiment YAML")],
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Check an experiment file without running it."""
    from peftbench.inputs.experiment import load_config

    try:
        loaded = load_config(config, set_)
    except PeftbenchError as exc:
        fail(exc)
    console.print(
        f"ok: {loaded.name}: {len(loaded.methods)} methods on {loaded.model.name}/{loaded.data.dataset}"
    )
