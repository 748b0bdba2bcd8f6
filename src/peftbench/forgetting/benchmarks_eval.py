"""Retention on benchmarks: lm-evaluation-harness tasks scored on the base model (once per experiment,
kept in the experiment folder) and on each trained language-model run as it ships (adapter active).

The change after - before gets a paired bootstrap interval over the items: the same items are scored
before and after, so resampling items together removes their difficulty from the interval."""

import hashlib
import logging
import os
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
from peft import PeftModel
from torch import nn

from peftbench.config.retention_config import RetentionConfig, require_lm_eval
from peftbench.errors import PeftbenchError, first_line
from peftbench.forgetting.forgetting import is_language_model
from peftbench.forgetting.retention import cached
from peftbench.inputs.run_inputs import RunInputs, model_identity
from peftbench.metrics.stats import paired_bootstrap

SCORING_ONLY = {"batch_size", "resamples"}  # fields that do not change a score
_MANAGERS: dict[tuple, object] = {}  # lm-eval indexes its ~10,000 task files in ~20 s: once per process


def _task_manager(config: RetentionConfig):
    """The user's folder alone when it defines every task (no index of lm-eval's own), else both."""
    from lm_eval.tasks import TaskManager

    key = (config.include_path, tuple(config.tasks))
    if key not in _MANAGERS:
        manager = None
        if config.include_path:
            manager = TaskManager(include_path=config.include_path, include_defaults=False)
            if not set(config.tasks) <= set(manager.all_tasks):
                manager = None
        manager = manager or TaskManager(include_path=config.include_path)
        unknown = [t for t in config.tasks if t not in manager.all_tasks]
        if unknown:
            where = f" or in include_path {config.include_path}" if config.include_path else ""
            raise PeftbenchError(
                f"retention.tasks: {unknown} not found in lm-eval's tasks{where}; "
                "check the names (lm-eval ls tasks) or the task YAMLs' `task:` keys"
            )
        _MANAGERS.clear()
        _MANAGERS[key] = manager
    return _MANAGERS[key]


def _subtasks(results: dict, task: str) -> list[str]:
    """The leaf tasks of a group (mmlu: its 57 subjects), or the task itself."""
    groups = results.get("group_subtasks") or {}
    if not groups.get(task):
        return [task]
    return [leaf for sub in groups[task] for leaf in _subtasks(results, sub)]


def _metric_key(scores: dict, config: RetentionConfig, task: str, results: dict) -> tuple[str, str]:
    """(metric, filter) of the score: the configured metric, else the task's first listed one."""
    wanted = config.metrics.get(task)
    if wanted is None:
        leaf = _subtasks(results, task)[0]
        listed = (results.get("configs", {}).get(leaf) or {}).get("metric_list") or []
        wanted = listed[0]["metric"] if listed else None
    keys = [k for k in scores if "," in k and "_stderr" not in k]
    for key in keys:
        metric, filtering = key.split(",", 1)
        if wanted in (None, metric):
            return metric, filtering
    names = sorted({k.split(",")[0] for k in keys})
    raise PeftbenchError(
        f"retention.metrics.{task}: '{wanted}' is not reported by the task; use one of {names}"
    )


def _items(results: dict, task: str, metric: str, filtering: str) -> dict[str, float] | None:
    """Each item's own score (leaf task and doc id as the key), or None when the metric is not a mean of
    per-item numbers (a corpus-level metric like BLEU)."""
    items = {}
    for leaf in _subtasks(results, task):
        for sample in results.get("samples", {}).get(leaf, []):
            value = sample.get(metric)
            if sample.get("filter", filtering) != filtering:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            items[f"{leaf}/{sample['doc_id']}"] = float(value)
    return items or None


def score_task(model: nn.Module, tokenizer, config: RetentionConfig, task: str) -> dict:
    """One task's score on `model` through lm_eval.simple_evaluate, with each item's score and the time."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    started = time.perf_counter()
    backend = "seq2seq" if getattr(model.config, "is_encoder_decoder", False) else "causal"
    training = model.training
    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    try:
        lm = HFLM(pretrained=model.eval(), tokenizer=tokenizer, backend=backend, batch_size=config.batch_size)
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=[task],
            task_manager=_task_manager(config),
            limit=config.limit,
            num_fewshot=config.num_fewshot,
            log_samples=True,
        )
    except PeftbenchError:
        raise
    except Exception as exc:  # lm-eval raises many types for a bad task file or missing data
        raise PeftbenchError(
            f"retention task '{task}' failed: {type(exc).__name__}: {first_line(exc)}; check the task "
            "(offline: its data must be local or in the datasets cache, HF_DATASETS_OFFLINE=1)"
        ) from exc
    finally:
        model.train(training)
    scores = results["results"][task]
    metric, filtering = _metric_key(scores, config, task, results)
    return {
        "metric": metric,
        "filter": filtering,
        "score": float(scores[f"{metric},{filtering}"]),
        "stderr": _number(scores.get(f"{metric}_stderr,{filtering}")),
        "higher_is_better": (results.get("higher_is_better", {}).get(task) or {}).get(metric, True),
        "items": _items(results, task, metric, filtering),
        "seconds": time.perf_counter() - started,
    }


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _task_files(config: RetentionConfig) -> str | None:
    """A digest of the custom task folder's files (YAMLs and local data), so an edited task is scored
    again rather than read from the cache."""
    if not config.include_path:
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(config.include_path).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(config.include_path)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def before_key(inputs: RunInputs, task: str) -> dict:
    """What the base model's score depends on: the model, the task and how it is scored, lm-eval."""
    config = inputs.config.retention
    return {
        "model": model_identity(inputs),
        "task": task,
        "retention": config.model_dump(mode="json", exclude=SCORING_ONLY | {"tasks"}),
        "task_files": _task_files(config),
        "lm_eval": version("lm_eval"),
    }


def change(before: dict, after: dict, resamples: int) -> dict:
    """after - before with a 95% interval: paired bootstrap over the items both scored, else (no per-item
    scores) ±1.96 × the two runs' lm-eval standard errors combined as if independent (wider)."""
    difference = after["score"] - before["score"]
    shared = sorted(set(before["items"] or {}) & set(after["items"] or {}))
    if shared and len(shared) == len(before["items"]) == len(after["items"]):
        b = np.array([before["items"][k] for k in shared])
        a = np.array([after["items"][k] for k in shared])
        test = paired_bootstrap(
            lambda i: a[i].mean(), lambda i: b[i].mean(), len(shared), resamples, unit="items"
        )
        shift = difference - test["difference"]  # lm-eval's group score may weight items unequally
        return {
            "change": difference,
            "change_ci95_low": test["ci95_low"] + shift,
            "change_ci95_high": test["ci95_high"] + shift,
            "change_p": test["p"],
            "interval": test["test"],
        }
    errors = [before["stderr"], after["stderr"]]
    half = 1.96 * float(np.hypot(*errors)) if None not in errors else None
    return {
        "change": difference,
        "change_ci95_low": difference - half if half is not None else None,
        "change_ci95_high": difference + half if half is not None else None,
        "change_p": None,
        "interval": "±1.96 × combined lm-eval stderr (unpaired)" if half is not None else None,
    }


def not_measured(inputs: RunInputs, model: nn.Module) -> str | None:
    if not is_language_model(inputs.base_model):
        return f"{inputs.config.task} run: the model has no language-model head for lm-eval to score"
    if isinstance(model, PeftModel) and model.peft_config[model.active_adapter].is_prompt_learning:
        return "prompt-learning adapter: its virtual tokens shift the logit positions lm-eval reads"
    return None


def _task_result(inputs: RunInputs, model: nn.Module, task: str) -> dict:
    config = inputs.config.retention
    before, cache = cached(
        inputs,
        "lm-eval-before",
        before_key(inputs, task),
        lambda: score_task(inputs.base_model, inputs.tokenizer, config, task),
    )
    after = score_task(model, inputs.tokenizer, config, task)
    return {
        "metric": after["metric"],
        "filter": after["filter"],
        "higher_is_better": after["higher_is_better"],
        "before": before["score"],
        "after": after["score"],
        **change(before, after, config.resamples),
        "before_stderr": before["stderr"],
        "after_stderr": after["stderr"],
        "items": len(after["items"]) if after["items"] else None,
        "seconds": after["seconds"],
        "before_seconds": before["seconds"],
        "cache": cache,  # the before score: hit (read from the experiment folder), miss (scored now)
    }


def measure(inputs: RunInputs, model: nn.Module) -> dict | None:
    """result.json's `retention`: per task before, after, change with its interval and seconds."""
    config = inputs.config.retention
    if config is None:
        return None
    why = not_measured(inputs, model)
    if why is not None:
        return {"tasks": None, "reason": why}
    require_lm_eval()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.perf_counter()
    tasks = {task: _task_result(inputs, model, task) for task in config.tasks}
    return {
        "tasks": tasks,
        "reason": None,
        "how": "lm_eval.simple_evaluate on the model in memory (an adapter active, not merged); before: "
        "the base model with no adapter, scored once per experiment",
        "limit": config.limit,
        "num_fewshot": config.num_fewshot,
        "lm_eval": version("lm_eval"),
        "seconds": time.perf_counter() - started,
    }
