"""An experiment read from YAML and checked against everything that knows its names: the schema
(peftbench.config.config), then the task, the trackers, every method entry (sweeps expanded) and the launcher,
before any run starts."""

from pathlib import Path

import yaml
from pydantic import ValidationError

from peftbench.config.config import ExperimentConfig, apply_overrides
from peftbench.config.retention_config import check_retention
from peftbench.config.schema import explain
from peftbench.config.trackers import check_trackers
from peftbench.errors import PeftbenchError
from peftbench.grid.grid import expand_methods
from peftbench.methods import check_quantized_base, validate_method
from peftbench.tasks import TASKS


def _check_launcher(config: ExperimentConfig) -> None:
    launcher, batch = config.launcher, config.training.batch_size
    if batch % launcher.num_processes:
        raise PeftbenchError(
            f"training.batch_size {batch} does not split over launcher.num_processes "
            f"{launcher.num_processes}; use a multiple of it (the global batch stays batch_size)"
        )
    if launcher.config_file and not Path(launcher.config_file).is_file():
        raise PeftbenchError(f"launcher.config_file '{launcher.config_file}' not found; check the path")
    if launcher.kind == "local" and launcher.num_processes > 1:
        raise PeftbenchError("launcher.num_processes > 1 needs launcher.kind torchrun or accelerate")


def _check_lr_search(config: ExperimentConfig, validation_metrics: tuple[str, ...]) -> None:
    if not config.lr_search:
        return
    if config.lr_search.metric not in validation_metrics:
        raise PeftbenchError(
            f"lr_search.metric '{config.lr_search.metric}' is not a validation metric of task "
            f"'{config.task}'; use one of {list(validation_metrics)}"
        )
    swept = [m.run_name for m in config.methods if "learning_rate" in (m.sweep or {})]
    if swept:
        raise PeftbenchError(
            f"methods {swept} sweep learning_rate while lr_search picks it; drop one of the two"
        )


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise PeftbenchError(f"config file '{path}' not found; pass the path to an experiment YAML")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PeftbenchError(f"config file '{path}' is not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(raw, dict):
        raise PeftbenchError(f"config file '{path}' must hold a mapping of keys, not {type(raw).__name__}")
    return raw


def build_config(raw: dict) -> ExperimentConfig:
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise PeftbenchError(explain(exc, ExperimentConfig)) from None
    task = TASKS.get(config.task)
    task.validate(config)
    check_trackers(config.training.report_to)
    for method in expand_methods(config.methods):
        validate_method(method)
        check_quantized_base(method.method, config.model.quantization)
    _check_launcher(config)
    _check_lr_search(config, task.validation_metrics)
    check_retention(config.retention)
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    return build_config(apply_overrides(read_yaml(path), overrides or []))
