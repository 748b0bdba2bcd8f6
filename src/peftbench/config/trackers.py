"""Experiment trackers: report_to goes straight to the Trainer's integrations; this module checks the
names early and adds each run's peftbench config (method, options, data, training) next to what the
integrations log themselves (the Trainer's arguments and the model config)."""

import json

import yaml
from transformers import TrainerCallback

from peftbench.errors import PeftbenchError, closest


def check_trackers(names: list[str]) -> None:
    """Known Trainer integrations whose package is installed; anything else fails before any run."""
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise PeftbenchError(
                f"training.report_to: unknown tracker '{name}'{closest(name, INTEGRATION_TO_CALLBACK)}; "
                f"known: {', '.join(INTEGRATION_TO_CALLBACK)}"
            )
        if name not in get_available_reporting_integrations():
            raise PeftbenchError(f"training.report_to: '{name}' needs its package; run: pip install {name}")


def _flat(config: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists as JSON text (trackers' parameters are scalars)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return flat


class RunConfigCallback(TrainerCallback):
    """After the integrations start their run (on_train_begin), log the peftbench config to each."""

    def __init__(self, run_config: dict, trackers: list[str], callbacks: list) -> None:
        self.run_config = run_config
        self.trackers = trackers
        self.callbacks = callbacks  # the Trainer's callback list, where the integrations live

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if "tensorboard" in self.trackers:
            self._tensorboard()
        if "mlflow" in self.trackers:
            import mlflow

            if mlflow.active_run():
                mlflow.log_params({k: str(v)[:500] for k, v in _flat(self.run_config).items()})
        if "wandb" in self.trackers:
            import wandb

            if wandb.run is not None:
                wandb.config.update({"peftbench": self.run_config}, allow_val_change=True)

    def _tensorboard(self) -> None:
        from transformers.integrations import TensorBoardCallback

        for callback in self.callbacks:
            if isinstance(callback, TensorBoardCallback) and callback.tb_writer is not None:
                text = yaml.safe_dump(self.run_config, sort_keys=False)
                callback.tb_writer.add_text("peftbench/config", f"```\n{text}\n```")
