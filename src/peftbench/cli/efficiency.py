"""Commands that measure cost: inspect (before training), probe-batch, bench-inference (after)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from peftbench.cli.app import SET_HELP, app, console, fail
from peftbench.config import MethodConfig
from peftbench.errors import PeftbenchError

METHOD_HELP = (
    "Method and options as NAME[:key=value...], e.g. lora:r=16:target_modules=[query,value] "
    "(repeatable; values are YAML)"
)


def parse_method(text: str) -> MethodConfig:
    """`lora:r=8:alpha=16` -> MethodConfig(method="lora", r=8, alpha=16), options checked by the method."""
    from peftbench.methods import validate_method

    name, *pairs = text.split(":")
    options = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise PeftbenchError(f"method option '{pair}' in '{text}' is not key=value; write e.g. lora:r=8")
        options[key.strip()] = yaml.safe_load(value)
    entry = MethodConfig(method=name.strip(), **options)
    validate_method(entry)
    return entry


@dataclass
class ProbeSetup:
    """What to inspect or probe: model, task, methods and the batch shape."""

    model: str
    task: str
    methods: list[MethodConfig]
    batch_size: int
    seq_len: int
    num_labels: int = 2
    precision: str = "auto"


def _probe_setup(
    config: Path | None, set_: list[str] | None, model: str | None, task: str, method: list[str] | None
) -> ProbeSetup:
    """From an experiment file (its model, task, methods, batch size and max_length) or from flags."""
    if config:
        from peftbench.experiment import load_config
        from peftbench.grid import expand_methods

        loaded = load_config(config, set_)
        return ProbeSetup(
            loaded.model.name,
            loaded.task,
            expand_methods(loaded.methods),
            loaded.training.batch_size,
            loaded.data.max_length,
            precision=loaded.training.precision,
        )
    if not model:
        raise PeftbenchError("give --model (an alias, hub id or path) or --config with an experiment file")
    return ProbeSetup(model, task, [parse_method(m) for m in method or ["full", "lora"]], 16, 128)


def _meta_base(setup: ProbeSetup):
    from peftbench import models
    from peftbench.efficiency.estimate import meta_model
    from peftbench.tasks import TASKS

    source = models.resolve(setup.model)
    task = TASKS.get(setup.task)
    return source, task, meta_model(source, task, setup.num_labels)


def _mib(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:,.1f}"


ConfigPathOption = Annotated[
    Path | None, typer.Option(help="Experiment YAML: its model, task, methods, batch, length")
]
ModelNameOption = Annotated[
    str | None, typer.Option(help="Alias (minilm, smollm2-135m), hub id or local path")
]
TaskNameOption = Annotated[str, typer.Option(help="classification, causal_lm or generation")]
MethodSpecsOption = Annotated[list[str] | None, typer.Option("--method", help=METHOD_HELP)]
NumLabelsOption = Annotated[int, typer.Option(help="Classes of the classification head")]
OverridesOption = Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)]


@app.command()
def inspect(
    config: ConfigPathOption = None,
    model: ModelNameOption = None,
    task: TaskNameOption = "classification",
    method: MethodSpecsOption = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: the config's, else 16")] = None,
    seq_len: Annotated[
        int | None, typer.Option(min=1, help="Default: the config's max_length, else 128")
    ] = None,
    num_labels: NumLabelsOption = 2,
    precision: Annotated[
        str, typer.Option(help="auto, fp32, bf16 or fp16 (autocast weight copies)")
    ] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON")] = None,
    set_: OverridesOption = None,
) -> None:
    """Parameters, artifact size and an estimate of training memory per method, from the model's config
    alone (meta device: no weights are loaded or downloaded)."""
    import json

    from peftbench.efficiency.estimate import METHOD, inspect_method
    from peftbench.results import write_atomic
    from peftbench.training import resolve_precision

    try:
        setup = _probe_setup(config, set_, model, task, method)
        precision = resolve_precision(setup.precision if precision == "auto" else precision)
        setup.num_labels = num_labels
        setup.batch_size, setup.seq_len = batch_size or setup.batch_size, seq_len or setup.seq_len
        source, task_obj, base = _meta_base(setup)
        found = [
            inspect_method(base, task_obj, e, source.path, setup.batch_size, setup.seq_len, precision)
            for e in setup.methods
        ]
    except PeftbenchError as exc:
        fail(exc)
    table = Table(title=f"{setup.model} · {setup.task} · batch {setup.batch_size} x {setup.seq_len} tokens")
    for column in ("method", "total", "trainable", "%", "saved as", "MiB"):
        table.add_column(column, justify="left" if column in ("method", "saved as") else "right")
    for column in ("weights", "gradients", "optimizer", "activations", "training total"):
        table.add_column(f"{column} MiB", justify="right")
    for row in found:
        memory = row.memory
        table.add_row(
            row.method,
            f"{row.total_params:,}",
            f"{row.trainable_params:,}",
            f"{row.trainable_percent:.3g}",
            row.artifact,
            _mib(row.artifact_bytes),
            *(_mib(v) for v in (memory.weights, memory.gradients, memory.optimizer, memory.activations)),
            _mib(memory.total),
        )
    console.print(table)
    console.print(f"[dim]estimate: {METHOD}[/dim]")
    if json_out:
        payload = {"model": setup.model, "task": setup.task, "batch_size": setup.batch_size}
        payload |= {"seq_len": setup.seq_len, "precision": precision, "method": METHOD}
        payload["methods"] = [r.as_dict() for r in found]
        write_atomic(json_out, json.dumps(payload, indent=2) + "\n")


@app.command("probe-batch")
def probe_batch(
    config: ConfigPathOption = None,
    model: ModelNameOption = None,
    task: TaskNameOption = "classification",
    method: MethodSpecsOption = None,
    seq_len: Annotated[
        int | None, typer.Option(min=1, help="Default: the config's max_length, else 128")
    ] = None,
    memory_budget: Annotated[
        float | None,
        typer.Option(help="GiB a CPU run may use (default: memory available now); ignored on CUDA"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Largest batch size tried")] = 4096,
    precision: Annotated[
        str, typer.Option(help="auto, fp32, bf16 or fp16 autocast for the CUDA steps")
    ] = "auto",
    num_labels: NumLabelsOption = 2,
    set_: OverridesOption = None,
) -> None:
    """The largest training batch that fits, per method: on CUDA by real steps (out-of-memory = too
    big, bisected); on CPU by the meta-device estimate against --memory-budget."""
    import copy

    import psutil
    import torch

    from peftbench.efficiency.probe import probe_method
    from peftbench.training import resolve_precision

    try:
        precision = resolve_precision(precision)
        setup = _probe_setup(config, set_, model, task, method)
        setup.num_labels, setup.seq_len = num_labels, seq_len or setup.seq_len
        source, task_obj, base = _meta_base(setup)
    except PeftbenchError as exc:
        fail(exc)
    on_cuda = torch.cuda.is_available()
    budget = None if on_cuda else int((memory_budget or psutil.virtual_memory().available / 2**30) * 2**30)

    def build():
        if not on_cuda:
            return copy.deepcopy(base)
        with torch.device("cuda"):
            return task_obj.model_from_config(base.config, setup.num_labels)

    probes = [
        probe_method(build, task_obj, e, source.path, setup.seq_len, limit, budget, precision)
        for e in setup.methods
    ]
    table = Table(title=f"largest training batch · {setup.model} · {setup.seq_len} tokens per example")
    for column in ("method", "largest batch", "memory MiB", "x vs first"):
        table.add_column(column, justify="left" if column == "method" else "right")
    first = probes[0].batch_size or None
    for probe in probes:
        ratio = f"{probe.batch_size / first:.2g}x" if first else "–"
        table.add_row(probe.method, str(probe.batch_size), _mib(probe.memory_bytes), ratio)
    console.print(table)
    console.print(f"[dim]{probes[0].how}; searched 1..{limit} by doubling, then bisection[/dim]")


@app.command("bench-inference")
def bench_inference(
    run_dir: Annotated[Path, typer.Argument(help="A finished run with an adapter, e.g. runs/NAME/lora")],
    samples: Annotated[int, typer.Option(min=1, help="Test examples (prompts) per timed pass")] = 64,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed passes first")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed passes; the median is reported")] = 5,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Generation tasks: tokens per prompt")] = 32,
) -> None:
    """Base model vs base + adapter vs adapter merged: latency, throughput, memory, and a check that the
    merged model's outputs match the unmerged one's. Writes RUN_DIR/inference.json."""
    from peftbench.efficiency.bench import run_benchmark

    try:
        report = run_benchmark(run_dir, samples, batch_size, warmup, repeats, max_new_tokens)
    except PeftbenchError as exc:
        fail(exc)
    rate_key = next(k for k in report["variants"][0] if k.endswith("_per_second"))
    table = Table(title=f"inference · {report['run']} · {report['device']} · {report['precision']}")
    for column in (
        "variant",
        "batch latency ms (median)",
        "IQR ms",
        rate_key.replace("_", " "),
        "weights MiB",
    ):
        table.add_column(column, justify="left" if column == "variant" else "right")
    table.add_column("peak memory MiB", justify="right")
    for row in report["variants"]:
        iqr = row["batch_latency_ms_iqr"]
        table.add_row(
            row["variant"],
            f"{row['batch_latency_ms_median']:.1f}",
            f"{iqr[0]:.1f}–{iqr[1]:.1f}" if iqr else "–",
            f"{row[rate_key]:,.1f}",
            _mib(row["weights_bytes"]),
            _mib(row["peak_memory_bytes"]),
        )
    console.print(table)
    merge = report["merge"]
    if merge["match"] is None:
        console.print(f"merged: {merge['problem']}")
    else:
        verdict = "match" if merge["match"] else "[red]DO NOT match[/red]"
        console.print(
            f"merged vs unmerged logits {verdict}: max |difference| {merge['max_abs_logit_difference']:.2e} "
            f"(tolerance atol {merge['tolerance']['atol']:g}, rtol {merge['tolerance']['rtol']:g}; "
            f"{merge['compared_on']})"
        )
    console.print(
        f"[dim]{report['timed_passes']} timed passes of {report['samples']} examples after "
        f"{report['warmup_passes']} warm-up; peak memory: {report['variants'][0]['peak_memory_kind']}; "
        f"written to {run_dir / 'inference.json'}[/dim]"
    )
    if merge["match"] is False:
        raise typer.Exit(1)
