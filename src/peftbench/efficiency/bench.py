"""`peftbench bench-inference RUN_DIR`: the base model, the base with the run's adapter attached, and the
adapter merged into the base, timed on the run's own test data, with a check that merging changed nothing."""

import copy
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from peft import PeftModel
from torch import nn

from peftbench.errors import PeftbenchError
from peftbench.forgetting.interpolation import plain_tuned
from peftbench.inputs.experiment import build_config
from peftbench.inputs.run_inputs import RunInputs, prepare_inputs
from peftbench.measure.measure import PeakMemory, weights_bytes
from peftbench.measure.timing import cuda_sync
from peftbench.methods import METHODS
from peftbench.results import results
from peftbench.tasks.decoding import generate, left_pad
from peftbench.training.training import autocast, model_columns, with_resolved_precision

TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}  # merged vs unmerged logits, both in fp32
TIMING = (
    "perf_counter around each full pass over the batches (CUDA synchronised), after warm-up passes; "
    "variants timed in turn, round by round"
)
EQUAL_WORK = (
    "generation: every variant generates exactly max_new_tokens per prompt (min_new_tokens = max_new_tokens, "
    "so EOS cannot end a sequence early), so all variants do the same work"
)


@dataclass(frozen=True)
class Timing:
    variant: str
    passes_seconds: list[float]
    units_per_pass: int
    unit: str  # "samples" or "generated tokens"
    batches: int
    weights_bytes: int
    peak_memory_bytes: int
    peak_memory_kind: str

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.passes_seconds)

    def summary(self) -> dict:
        quartiles = statistics.quantiles(self.passes_seconds, n=4) if len(self.passes_seconds) > 1 else None
        return {
            **asdict(self),
            "batch_latency_ms_median": 1000 * self.median_seconds / self.batches,
            "batch_latency_ms_iqr": None
            if quartiles is None
            else [1000 * q / self.batches for q in (quartiles[0], quartiles[2])],
            f"{self.unit.replace(' ', '_')}_per_second": self.units_per_pass / self.median_seconds,
        }


def load_run(run_dir: Path) -> tuple[RunInputs, dict]:
    """The finished run's workspace (same data, seed and fresh head as in training) and result.json."""
    result_file = run_dir / results.RESULT_FILE
    if not result_file.is_file():
        raise PeftbenchError(
            f"no finished run in '{run_dir}' (result.json missing); pass a run folder like runs/NAME/lora"
        )
    result = json.loads(result_file.read_text())
    method = result.get("method", {}).get("name")
    if (
        method not in METHODS
        or METHODS.get(method).saved_as != "adapter"
        or not (run_dir / "adapter").is_dir()
    ):
        raise PeftbenchError(
            f"run '{result.get('run')}' has no adapter (method '{method}'); bench-inference compares the "
            "base model, base + adapter and merged: pick a run of a PEFT method such as lora or ia3"
        )
    raw = yaml.safe_load((run_dir / "config.yaml").read_text())  # training: the run's own, per method
    entry = raw.pop("method")
    config = with_resolved_precision(build_config({**raw, "methods": [entry]}))
    return prepare_inputs(config), result


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def variants(workspace: RunInputs, run_dir: Path) -> tuple[dict[str, nn.Module], str | None]:
    """base, adapter and merged models (merged absent, with the reason, if the method cannot merge)."""
    device = _device()
    base = workspace.base_model.to(device).eval()
    adapted = PeftModel.from_pretrained(copy.deepcopy(base), run_dir / "adapter").to(device).eval()
    models = {"base": base, "adapter": adapted}
    merged, problem = plain_tuned(adapted)  # the trained head swapped in first: BERT's pooler has no weight
    if merged is None:
        return models, f"not mergeable: {problem}"
    models["merged"] = merged.eval()
    return models, None


def forward_batches(workspace: RunInputs, samples: int, batch_size: int) -> list[dict]:
    """Padded test batches without labels (inference only), on the benchmark device."""
    parts = workspace.task.trainer_parts(workspace.tokenizer, workspace.base_model, workspace.data)
    inputs = tuple(name for name in parts.model_inputs if name not in ("label", "labels"))
    test = model_columns(workspace.data.splits["test"], inputs)
    rows = [test[i] for i in range(min(samples, len(test)))]
    batches = [parts.collator(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    return [{k: v.to(_device()) for k, v in batch.items()} for batch in batches]


def forward_workload(batches: list[dict], precision: str) -> Callable[[nn.Module], int]:
    def run(model: nn.Module) -> int:
        with torch.inference_mode(), autocast(precision, _device()):
            for batch in batches:
                model(**batch)
        return sum(len(b["input_ids"]) for b in batches)

    return run


def generate_workload(workspace: RunInputs, samples: int, batch_size: int, max_new_tokens: int):
    config = workspace.config
    prompts = [group["prompt_ids"] for group in workspace.data.test_references][:samples]
    decoding = config.generation.model_copy(
        update={"batch_size": batch_size, "max_new_tokens": max_new_tokens}
    )
    encoder_decoder = workspace.data.metadata["encoder_decoder"]

    def run(model: nn.Module) -> int:
        made = generate(
            model,
            workspace.tokenizer,
            prompts,
            decoding,
            config.training.precision,
            encoder_decoder,
            config.seed,
            exact_length=True,
        )
        return sum(made.token_counts)

    return run, prompts


def _timed_pass(model: nn.Module, workload: Callable) -> tuple[float, int, int]:
    """Seconds, units done and peak memory (CUDA allocated, else process RSS) of one pass."""
    with PeakMemory() as memory:
        cuda_sync()
        start = time.perf_counter()
        units = workload(model)
        cuda_sync()
        seconds = time.perf_counter() - start
    peak = memory.report()["cuda_peak_allocated_bytes"] if torch.cuda.is_available() else memory.peak_rss
    return seconds, units, peak


def time_variants(
    models: dict[str, nn.Module], workload: Callable, unit: str, batches: int, warmup: int, repeats: int
) -> list[Timing]:
    """Warm every variant up, then time them in turn, `repeats` rounds, so that drift in the machine's
    speed (frequency, caches, other load) falls on all variants alike instead of on whichever ran first."""
    for model in models.values():
        for _ in range(warmup):
            workload(model)
    passes: dict[str, list[float]] = {name: [] for name in models}
    peaks: dict[str, int] = dict.fromkeys(models, 0)
    units: dict[str, int] = dict.fromkeys(models, 0)
    for _ in range(repeats):
        for name, model in models.items():
            seconds, units[name], peak = _timed_pass(model, workload)
            passes[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    kind = "CUDA peak allocated" if torch.cuda.is_available() else "process peak RSS (all variants loaded)"
    return [
        Timing(name, passes[name], units[name], unit, batches, weights_bytes(model), peaks[name], kind)
        for name, model in models.items()
    ]


def merge_check(adapted: nn.Module, merged: nn.Module, batch: dict) -> dict:
    """Largest difference between unmerged and merged logits on one batch, in fp32."""
    with torch.inference_mode():
        expected = adapted(**batch).logits.float()
        actual = merged(**batch).logits.float()
    difference = (expected - actual).abs().max().item()
    return {
        "max_abs_logit_difference": difference,
        "tolerance": TOLERANCE,
        "match": bool(torch.allclose(expected, actual, **TOLERANCE)),
        "compared_on": f"first batch, {len(batch['input_ids'])} examples, fp32 without autocast",
    }


def run_benchmark(
    run_dir: Path, samples: int, batch_size: int, warmup: int, repeats: int, max_new_tokens: int
) -> dict:
    """Time every variant on the same inputs, check the merge, and write inference.json into the run."""
    workspace, result = load_run(run_dir)
    models, merge_problem = variants(workspace, run_dir)
    if workspace.config.task == "generation":
        workload, prompts = generate_workload(workspace, samples, batch_size, max_new_tokens)
        unit, batches = "generated tokens", -(-len(prompts) // batch_size)
        check_batch = left_pad(prompts[:batch_size], workspace.tokenizer.pad_token_id, _device())
    else:
        forward = forward_batches(workspace, samples, batch_size)
        workload, batches, check_batch = (
            forward_workload(forward, workspace.config.training.precision),
            len(forward),
            forward[0],
        )
        unit = "samples" if workspace.config.task == "classification" else "sequences"
    timings = [t.summary() for t in time_variants(models, workload, unit, batches, warmup, repeats)]
    report = {
        "run": result["run"],
        "method": result["method"],
        "device": str(_device()),
        "precision": workspace.config.training.precision,
        "samples": samples,
        "batch_size": batch_size,
        "warmup_passes": warmup,
        "timed_passes": repeats,
        "timing_method": TIMING + ("; " + EQUAL_WORK if workspace.config.task == "generation" else ""),
        "variants": timings,
        "merge": merge_check(models["adapter"], models["merged"], check_batch)
        if "merged" in models
        else {"match": None, "problem": merge_problem},
        "measured_at": results.now(),
    }
    results.write_json(run_dir / "inference.json", report)
    return report
