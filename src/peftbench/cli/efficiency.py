"""Commands that measure cost: inspect (before training), probe-batch, bench-inference (after)."""

from pathlib import Path
from typing import Annotated

import typer

from peftbench.cli.app import SET_HELP, app, console, fail
from peftbench.cli.options import refuse_twice, refuse_unread_keys, refuse_unused
from peftbench.cli.output import CsvOption, JsonOption, to_stdout, write_figures
from peftbench.efficiency.probe_setup import ProbeSetup, meta_base
from peftbench.errors import PeftbenchError

METHOD_HELP = (
    "Method and options as NAME[:key=value...], e.g. lora:r=16:target_modules=[query,value] "
    "(repeatable; values are YAML)"
)


# Each flag that also exists as a config key, and that key.
FLAG_KEYS = {
    "model": "model.name",
    "task": "task",
    "method": "methods",
    "batch_size": "training.batch_size",
    "seq_len": "data.max_length",
    "precision": "training.precision",
    "gradient_checkpointing": "training.gradient_checkpointing",
    "optim": "training.optim",
    "quantization": "model.quantization",
}
IN_THE_FILE = {
    "model": "the file's model is used; change it with --set model=NAME",
    "task": "the file's task is used; change it with --set task=NAME",
    "method": "the file's methods are used; change them with --set 'methods=[{method: lora, r: 8}]'",
}


def _probe_setup(
    ctx: typer.Context,
    config: Path | None,
    set_: list[str] | None,
    model: str | None,
    task: str,
    method: list[str] | None,
    reads: tuple[str, ...],
) -> ProbeSetup:
    """From an experiment file (its model, task, methods, batch size and max_length) or from flags, --set
    applied to either; options that would be ignored are refused."""
    from peftbench.efficiency.probe_setup import from_config, from_flags

    if config:
        refuse_unused(ctx, IN_THE_FILE, "with --config")
    refuse_unread_keys(set_, reads, ctx.command.name)
    refuse_twice(ctx, set_, {name: key for name, key in FLAG_KEYS.items() if name in ctx.params})
    setup = from_config(config, set_) if config else from_flags(model, task, method, set_)
    if setup.task != "classification":
        refuse_unused(ctx, {"num_labels": "drop it"}, f"by a {setup.task} model (no label head)")
    return setup


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
Checkpointing = Annotated[
    bool | None,
    typer.Option(
        "--gradient-checkpointing/--no-gradient-checkpointing",
        help="Default: training.gradient_checkpointing (from --config or --set), else off",
    ),
]
Optim = Annotated[
    str | None, typer.Option(help="The Trainer's optimizer (adamw_torch_fused, adamw_8bit, adafactor, ...)")
]
PrecisionOption = Annotated[
    str, typer.Option(help="fp32, bf16 or fp16 autocast; auto: training.precision, resolved on this machine")
]
Bits = Annotated[
    int | None,
    typer.Option("--quantization", help="4 or 8: a bitsandbytes-quantised base (nf4, double quant); 0: none"),
]


def _inspect_all(setup: ProbeSetup, precision: str):
    from peftbench.efficiency.estimate import inspect_method

    source, task, base = meta_base(setup)
    shape = (setup.batch_size, setup.seq_len, precision, setup.memory)
    return [inspect_method(base, task, entry, source.path, *shape) for entry in setup.methods]


@app.command()
def inspect(
    ctx: typer.Context,
    config: ConfigPathOption = None,
    model: ModelNameOption = None,
    task: TaskNameOption = "classification",
    method: MethodSpecsOption = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: the config's, else 16")] = None,
    seq_len: Annotated[
        int | None, typer.Option(min=1, help="Default: the config's max_length, else 128")
    ] = None,
    num_labels: NumLabelsOption = 2,
    precision: PrecisionOption = "auto",
    gradient_checkpointing: Checkpointing = None,
    optim: Optim = None,
    quantization: Bits = None,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
    set_: OverridesOption = None,
) -> None:
    """Parameters, artifact size and an estimate of training memory per method, from the model's config
    alone (meta device: no weights are loaded or downloaded)."""
    from peftbench.efficiency.estimate import METHOD
    from peftbench.efficiency.probe_setup import READS, with_memory_flags
    from peftbench.efficiency.tables import inspection_payload, inspection_table
    from peftbench.training.training import resolve_precision

    try:
        setup = _probe_setup(ctx, config, set_, model, task, method, READS)
        setup = with_memory_flags(setup, gradient_checkpointing, optim, quantization)
        precision = resolve_precision(setup.precision if precision == "auto" else precision)
        setup.num_labels = num_labels
        setup.batch_size, setup.seq_len = batch_size or setup.batch_size, seq_len or setup.seq_len
        found = _inspect_all(setup, precision)
        piped = to_stdout(json_out, csv_out)
    except PeftbenchError as exc:
        fail(exc)
    if not piped:
        console.print(inspection_table(setup, found))
        console.print(f"[dim]estimate: {METHOD}[/dim]")
    records = [r.as_dict() for r in found]
    write_figures(json_out, csv_out, inspection_payload(setup, precision, found), records)


@app.command("probe-batch")
def probe_batch(
    ctx: typer.Context,
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
    precision: PrecisionOption = "auto",
    num_labels: NumLabelsOption = 2,
    gradient_checkpointing: Checkpointing = None,
    optim: Optim = None,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
    set_: OverridesOption = None,
) -> None:
    """The largest training batch that fits, per method: on CUDA by real steps (out-of-memory = too
    big, bisected); on CPU by the meta-device estimate against --memory-budget."""
    import copy

    import psutil
    import torch

    from peftbench.efficiency.probe import probe_method
    from peftbench.efficiency.probe_setup import READS, with_memory_flags
    from peftbench.efficiency.tables import probe_payload, probe_table
    from peftbench.training.training import resolve_precision

    on_cuda = torch.cuda.is_available()
    reads = tuple(key for key in READS if key != "training.batch_size")  # the batch is what is searched
    try:
        if on_cuda:
            refuse_unused(ctx, {"memory_budget": "the GPU's own memory is the budget; drop it"}, "on CUDA")
        setup = _probe_setup(ctx, config, set_, model, task, method, reads)
        setup = with_memory_flags(setup, gradient_checkpointing, optim, None)
        precision = resolve_precision(setup.precision if precision == "auto" else precision)
        setup.num_labels, setup.seq_len = num_labels, seq_len or setup.seq_len
        source, task_obj, base = meta_base(setup)
        piped = to_stdout(json_out, csv_out)
    except PeftbenchError as exc:
        fail(exc)
    budget = None if on_cuda else int((memory_budget or psutil.virtual_memory().available / 2**30) * 2**30)

    def build():
        if not on_cuda:
            return copy.deepcopy(base)
        with torch.device("cuda"):
            return task_obj.model_from_config(base.config, setup.num_labels)

    try:
        probes = [
            probe_method(
                build, task_obj, e, source.path, setup.seq_len, limit, budget, precision, setup.memory
            )
            for e in setup.methods
        ]
    except PeftbenchError as exc:
        fail(exc)
    if not piped:
        console.print(probe_table(setup, probes))
        console.print(f"[dim]{probes[0].how}; searched 1..{limit} by doubling, then bisection[/dim]")
    payload = probe_payload(setup, precision, limit, probes)
    write_figures(json_out, csv_out, payload, payload["methods"])


def _run_task(run_dir: Path) -> str | None:
    """The task of the run in RUN_DIR, None when it cannot be read (run_benchmark then says why)."""
    import yaml

    try:
        return (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("task", "classification")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def _print_inference(report: dict, run_dir: Path) -> None:
    from peftbench.efficiency.tables import inference_table

    console.print(inference_table(report))
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


@app.command("bench-inference")
def bench_inference(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A finished run with an adapter, e.g. runs/NAME/lora")],
    samples: Annotated[int, typer.Option(min=1, help="Test examples (prompts) per timed pass")] = 64,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed passes first")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed passes; the median is reported")] = 5,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Generation tasks: tokens per prompt")] = 32,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
) -> None:
    """Base model vs base + adapter vs adapter merged: latency, throughput, memory, and a check that the
    merged model's outputs match the unmerged one's. Writes RUN_DIR/inference.json."""
    from peftbench.efficiency.bench import run_benchmark

    try:
        task = _run_task(run_dir)
        if task not in (None, "generation"):
            refuse_unused(ctx, {"max_new_tokens": "drop it"}, f"by a {task} run (it generates nothing)")
        piped = to_stdout(json_out, csv_out)
        report = run_benchmark(run_dir, samples, batch_size, warmup, repeats, max_new_tokens)
    except PeftbenchError as exc:
        fail(exc)
    if not piped:
        _print_inference(report, run_dir)
    write_figures(json_out, csv_out, report, report["variants"])
    if report["merge"]["match"] is False:
        if piped:
            typer.echo("error: merged vs unmerged logits DO NOT match (see the JSON's merge)", err=True)
        raise typer.Exit(1)
