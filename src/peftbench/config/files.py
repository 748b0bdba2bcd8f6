"""An experiment file read, and checked against the schema alone. Both are light (PyYAML and pydantic, no
torch), so `peftbench run` reports a mistyped key or a missing section in under a second, before it
imports the method and task registries that the full check needs (inputs/experiment.py)."""

from pathlib import Path

import yaml
from pydantic import ValidationError

from peftbench.config.config import ExperimentConfig
from peftbench.config.schema import explain
from peftbench.errors import PeftbenchError


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


def check_schema(raw: dict) -> ExperimentConfig:
    """The experiment's sections and keys, without what only the registries can check (a method's own
    options, a task's columns)."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise PeftbenchError(explain(exc, ExperimentConfig)) from None
