"""Per run: forgetting on general text and the stability-plasticity curve, for result.json.

The base model's loss ("before") and the alpha-0 point are measured once per experiment and kept in the
experiment folder under a hash of what they depend on, so runs in other processes reuse them; the probe
(text blocks, and for classifiers an LM-head copy) is kept in memory, under the same kind of key, for the
runs that share a process (--inline)."""

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from peft import PeftModel
from torch import nn

from peftbench.errors import PeftbenchError
from peftbench.forgetting import forgetting
from peftbench.forgetting.forgetting import TextSet
from peftbench.forgetting.interpolation import Interpolator, plain_tuned
from peftbench.inputs.datacache import cache_key
from peftbench.inputs.run_inputs import RunInputs, model_identity
from peftbench.results import results
from peftbench.training.training import eval_metrics, make_trainer

CACHE_FOLDER = "retention-cache"
SCORING_ONLY = {"batch_size"}  # forgetting fields that do not change the loss (equal blocks, no padding)
TRAINING_ONLY = {  # training fields that do not change an evaluation (anything else is in the alpha-0 key)
    "epochs",
    "batch_size",
    "learning_rate",
    "head_learning_rate",
    "warmup_ratio",
    "weight_decay",
    "gradient_accumulation_steps",
    "lr_scheduler",
    "early_stopping_patience",
    "logging_steps",
    "checkpoint_every",
    "checkpoint_minutes",
    "report_to",
    "gradient_checkpointing",
    "optim",
}


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(inputs: RunInputs, kind: str, key: dict, compute) -> tuple[object, str]:
    """The value stored for `key` in the experiment folder ("hit"), or computed now and stored ("miss").
    One file per key, written atomically: parallel runs never lose each other's entries. The file name
    hashes the whole key; the key inside is stored as written, secret values redacted."""
    path = Path(inputs.directory) / CACHE_FOLDER / f"{kind}-{_digest(key)}.json"
    stored = results.read_json(path) or {}
    if "value" in stored and stored.get("key") == results.redact(json.loads(json.dumps(key, default=str))):
        return stored["value"], "hit"
    value = compute()
    results.write_json(path, {"key": key, "value": value})
    return value, "miss"


@dataclass
class Probe:
    """Scores any model of the experiment on the general-text set."""

    text: TextSet | None
    head_model: nn.Module | None  # classifiers: the checkpoint with its LM head; None: the model is an LM
    reason: str | None = None  # why forgetting is not measured (then text is None)
    before: float | None = None

    def score(self, model: nn.Module) -> tuple[float | None, str | None]:
        if self.text is None:
            return None, self.reason
        if self.head_model is None:
            return forgetting.loss_per_token(model, self.text), None
        if isinstance(model, PeftModel):
            model, why = plain_tuned(model)
            if model is None:
                return None, why
        return forgetting.loss_per_token(forgetting.load_body(self.head_model, model), self.text), None


_PROBES: dict[str, Probe] = {}  # one entry: a classifier's probe holds a whole LM-head model


def _build_probe(inputs: RunInputs) -> Probe:
    config = inputs.config.forgetting
    model = inputs.base_model
    kind = forgetting.scoring_kind(model.config)
    if kind is None:
        return Probe(None, None, f"{model.config.model_type}: no loss per token on plain text for this model")
    head_model = None
    if not forgetting.is_language_model(model):
        head_model, why = forgetting.load_head_model(inputs.source, kind)
        if head_model is None:
            return Probe(None, None, why)
    return Probe(forgetting.build_text_set(config, inputs.tokenizer, model.config, kind), head_model)


def _text_key(inputs: RunInputs) -> dict:
    """What the before value depends on: the base model and the text set (not how it is batched)."""
    text = inputs.config.forgetting.model_dump(mode="json", exclude=SCORING_ONLY)
    return {"model": model_identity(inputs), "text": text}


def _before(inputs: RunInputs, probe: Probe) -> tuple[float, str]:
    """The untouched base model's loss, read from the experiment folder when another run measured it."""
    key = _text_key(inputs) | {"kind": probe.text.kind, "tokens": probe.text.tokens}
    base = inputs.base_model if probe.head_model is None else probe.head_model
    return cached(inputs, "forgetting-before", key, lambda: forgetting.loss_per_token(base, probe.text))


def probe_for(inputs: RunInputs) -> tuple[Probe, str | None]:
    """The experiment's probe, built on first use (the before value measured then, on the base model),
    and whether its before value came from a cache."""
    key = _digest(_text_key(inputs) | {"scoring": inputs.config.forgetting.model_dump(mode="json")})
    if key in _PROBES:
        probe = _PROBES[key]
        return probe, "hit" if probe.text is not None else None
    _PROBES.clear()
    probe = _build_probe(inputs)
    status = None
    if probe.text is not None:
        probe.before, status = _before(inputs, probe)
    _PROBES[key] = probe
    return probe, status


def measure_forgetting(inputs: RunInputs, model: nn.Module) -> dict | None:
    if inputs.config.forgetting is None:
        return None
    started = time.perf_counter()
    probe, cache = probe_for(inputs)
    after, why = probe.score(model)
    text = probe.text
    return {
        "before": probe.before,
        "after": after,
        "value": after - probe.before if after is not None else None,
        "tokens": text.tokens if text else None,
        "metric": "loss",  # loss per token: lower is better, so forgetting > 0 is lost ability
        "dataset": inputs.config.forgetting.dataset,
        "how": (text.how + "; before: the base model with no adapter attached") if text else None,
        "reason": why,
        "cache": cache,  # the before value: hit (read), miss (measured by this run), None (not measured)
        "seconds": time.perf_counter() - started,
    }


def target_metric(task) -> str:
    """The curve's target metric: the task's headline metric when validation reports it, else the loss."""
    return next((m for m in task.headline_metrics if m in task.validation_metrics), "loss")


def _validation_scorer(inputs: RunInputs, model: nn.Module, folder: Path, cap: int):
    validation = inputs.data.splits["validation"]
    validation = validation.select(range(min(cap, len(validation))))
    parts = inputs.task.trainer_parts(inputs.tokenizer, model, inputs.data)
    config = inputs.config
    trainer = make_trainer(
        model, inputs.tokenizer, config.training, folder, config.seed, parts, None, validation
    )
    return lambda: eval_metrics(trainer.evaluate()), len(validation)


def _point(alpha: float, metric: str, evaluate, probe: Probe | None, model: nn.Module) -> dict:
    after = probe.score(model)[0] if probe else None
    lost = after - probe.before if after is not None else None
    return {"alpha": alpha, "metric": metric, "value": evaluate().get(metric), "forgetting": lost}


def _alpha0_key(inputs: RunInputs, metric: str) -> dict:
    """What the alpha-0 point depends on: the base model, the data, the seed (a classifier's fresh head is
    drawn from it), the evaluation settings and the text set; not the method."""
    config = inputs.config
    text = config.forgetting.model_dump(mode="json", exclude=SCORING_ONLY) if config.forgetting else None
    return {
        "model": model_identity(inputs),
        "data": cache_key(config, inputs.source),
        "seed": config.seed,
        "metric": metric,
        "samples": config.interpolation.max_eval_samples,
        "training": config.training.model_dump(mode="json", exclude=TRAINING_ONLY),
        "text": text,
    }


def _points(
    inputs: RunInputs, moving: Interpolator, evaluate, tuned_forgetting: float | None
) -> tuple[list[dict], str | None]:
    """Alpha 0 is the base model for every method (shared head included): scored once per experiment
    and seed, then read from the experiment folder. Alpha 1's forgetting is the run's own
    `forgetting.value` (the unmerged model as it ships)."""
    metric = target_metric(inputs.task)
    probe = probe_for(inputs)[0] if inputs.config.forgetting is not None else None

    def score_base() -> dict:
        return _point(0.0, metric, evaluate, probe, moving.set_alpha(0.0))

    points, cache = [], None
    for alpha in inputs.config.interpolation.alphas:
        if alpha == 0:
            point, cache = cached(inputs, "alpha0", _alpha0_key(inputs, metric), score_base)
            points.append(point | {"alpha": alpha})
            continue
        model = moving.set_alpha(alpha)
        if alpha == 1 and probe is not None:
            point = _point(alpha, metric, evaluate, None, model) | {"forgetting": tuned_forgetting}
        else:
            point = _point(alpha, metric, evaluate, probe, model)
        points.append(point)
    return points, cache


def curve(
    inputs: RunInputs, model: nn.Module, tuned_forgetting: float | None
) -> tuple[list[dict] | None, dict]:
    """[{alpha, metric, value, forgetting}] for the configured alphas, and how it was made (or why not)."""
    config = inputs.config.interpolation
    if config is None:
        return None, {"reason": "interpolation: false"}
    if inputs.config.model.quantization is not None:
        return None, {"reason": "quantised base: its packed integer weights have no alpha in between"}
    size = sum(p.numel() for p in inputs.base_model.parameters())
    if size > config.max_params:
        return None, {"reason": f"{size:,} parameters > interpolation.max_params {config.max_params:,}"}
    started = time.perf_counter()
    tuned, why = plain_tuned(model)
    if tuned is None:
        return None, {"reason": why}
    try:
        moving = Interpolator(inputs.base_model, tuned)
    except PeftbenchError as exc:
        return None, {"reason": str(exc)}
    with tempfile.TemporaryDirectory(prefix="peftbench-interp-") as scratch:
        evaluate, samples = _validation_scorer(inputs, tuned, Path(scratch), config.max_eval_samples)
        points, cache = _points(inputs, moving, evaluate, tuned_forgetting)
    info = {
        "how": "theta0 + alpha*(theta - theta0) over every weight the method changed, adapters merged "
        "first; metric on the first samples of the validation split; forgetting as in `forgetting` (alpha "
        "0 scored once per experiment and seed, alpha 1 is the run's own forgetting)",
        "split": "validation",
        "samples": samples,
        "changed_tensors": moving.changed_tensors,
        "cache": cache,  # the alpha-0 point: hit (read), miss (scored by this run), None (no alpha 0)
        "seconds": time.perf_counter() - started,
    }
    return points, info


def measure(inputs: RunInputs, model: nn.Module) -> dict:
    """Everything this module adds to a method run's result.json."""
    lost = measure_forgetting(inputs, model)
    points, info = curve(inputs, model, lost["value"] if lost else None)
    return {"forgetting": lost, "interpolation": points, "interpolation_info": info}
