"""An experiment read from YAML and checked against everything that knows its names: the schema
(peftbench.config.config), then the task, the trackers, every method entry (sweeps expanded) and the launcher,
before any run starts."""

from pathlib import Path

from peftbench.config.config import ExperimentConfig, apply_overrides
from peftbench.config.files import check_schema, read_yaml
from peftbench.config.retention_config import check_retention
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


def build_config(raw: dict) -> ExperimentConfig:
    return check_with_registries(check_schema(raw))


def check_with_registries(config: ExperimentConfig) -> ExperimentConfig:
    """What the schema alone cannot check: the task's rules, each method's options, trackers, launcher,
    learning-rate search and retention benchmarks."""
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
