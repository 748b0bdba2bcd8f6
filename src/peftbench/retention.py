"""Per run: forgetting on general text and the stability-plasticity curve (issue 15), for result.json.

The base model's loss ("before") is measured once per experiment and kept in the experiment folder, so
runs in other processes reuse it; the probe (text blocks, and for classifiers an LM-head copy) is kept in
memory for the runs of one RunInputs (one seed and data fraction)."""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from peft import PeftModel
from torch import nn

from peftbench import forgetting, results
from peftbench.errors import PeftbenchError
from peftbench.forgetting import TextSet
from peftbench.interpolation import Interpolator, plain_tuned
from peftbench.run_inputs import RunInputs
from peftbench.training import eval_metrics, make_trainer

BEFORE_FILE = "forgetting-before.json"


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


_PROBES: dict[int, tuple[object, Probe]] = {}


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


def _before(inputs: RunInputs, probe: Probe) -> float:
    """The untouched base model's loss, read from the experiment folder when another run measured it."""
    config = inputs.config.forgetting
    key = f"{inputs.source.path}|{config.model_dump_json()}|{probe.text.kind}|{probe.text.tokens}"
    path = Path(inputs.directory) / BEFORE_FILE
    known = results.read_json(path) or {}
    if key not in known:
        base = inputs.base_model if probe.head_model is None else probe.head_model
        known[key] = forgetting.loss_per_token(base, probe.text)
        path.parent.mkdir(parents=True, exist_ok=True)
        results.write_json(path, known)
    return known[key]


def probe_for(inputs: RunInputs) -> Probe:
    """The experiment's probe, built on first use (the before value measured then, on the base model)."""
    cached = _PROBES.get(id(inputs))
    if cached and cached[0] is inputs:
        return cached[1]
    _PROBES.clear()
    probe = _build_probe(inputs)
    if probe.text is not None:
        probe.before = _before(inputs, probe)
    _PROBES[id(inputs)] = (inputs, probe)
    return probe


def measure_forgetting(inputs: RunInputs, model: nn.Module) -> dict | None:
    if inputs.config.forgetting is None:
        return None
    started = time.perf_counter()
    probe = probe_for(inputs)
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


_BASE_POINT: dict[int, tuple[object, dict]] = {}


def _point(alpha: float, metric: str, evaluate, probe: Probe | None, model: nn.Module) -> dict:
    after = probe.score(model)[0] if probe else None
    lost = after - probe.before if after is not None else None
    return {"alpha": alpha, "metric": metric, "value": evaluate().get(metric), "forgetting": lost}


def _points(inputs: RunInputs, moving: Interpolator, evaluate, tuned_forgetting: float | None) -> list[dict]:
    """Alpha 0 is the base model for every method (shared head included): scored once per inputs.
    Alpha 1's forgetting is the run's own `forgetting.value` (the unmerged model as it ships)."""
    metric = target_metric(inputs.task)
    probe = probe_for(inputs) if inputs.config.forgetting is not None else None
    points = []
    for alpha in inputs.config.interpolation.alphas:
        cached = _BASE_POINT.get(id(inputs))
        if alpha == 0 and cached and cached[0] is inputs:
            points.append(cached[1])
            continue
        model = moving.set_alpha(alpha)
        if alpha == 1 and probe is not None:
            point = _point(alpha, metric, evaluate, None, model) | {"forgetting": tuned_forgetting}
        else:
            point = _point(alpha, metric, evaluate, probe, model)
        if alpha == 0:
            _BASE_POINT.clear()
            _BASE_POINT[id(inputs)] = (inputs, point)
        points.append(point)
    return points


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
        points = _points(inputs, moving, evaluate, tuned_forgetting)
    info = {
        "how": "theta0 + alpha*(theta - theta0) over every weight the method changed, adapters merged "
        "first; metric on the first samples of the validation split; forgetting as in `forgetting` (alpha "
        "0 scored once per experiment, alpha 1 is the run's own forgetting)",
        "split": "validation",
        "samples": samples,
        "changed_tensors": moving.changed_tensors,
        "seconds": time.perf_counter() - started,
    }
    return points, info


def measure(inputs: RunInputs, model: nn.Module) -> dict:
    """Everything this module adds to a method run's result.json."""
    lost = measure_forgetting(inputs, model)
    points, info = curve(inputs, model, lost["value"] if lost else None)
    return {"forgetting": lost, "interpolation": points, "interpolation_info": info}
