"""The `retention:` section: lm-evaluation-harness tasks scored on the base model and on every trained
language-model run (docs/retention.md). Off unless given."""

import importlib.util
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from peftbench.config.schema import Strict
from peftbench.errors import PeftbenchError

INSTALL = "pip install peftbench[retention]"


class RetentionConfig(Strict):
    """Benchmarks a tuned model should still pass: any lm-eval task, before (base) and after training."""

    tasks: list[str] = Field(
        min_length=1, description="lm-eval task or group names, e.g. [mmlu, hellaswag, arc_easy]"
    )
    include_path: str | None = Field(
        None, description="Folder of custom lm-eval task YAMLs (searched before lm-eval's own tasks)"
    )
    limit: int | None = Field(None, gt=0, description="Score at most this many items of each task")
    num_fewshot: int | None = Field(None, ge=0, description="Few-shot examples; default: each task's own")
    batch_size: int = Field(8, gt=0)
    metrics: dict[str, str] = Field(
        {}, description="Metric per task, e.g. {hellaswag: acc_norm}; default: the task's first metric"
    )
    resamples: int = Field(1000, gt=0, description="Paired-bootstrap resamples for the change's interval")


def _switch(value: Any) -> Any:
    """false (or null): off, held as None; a list: those tasks with the defaults; a mapping: as given."""
    if value is False:
        return None
    return {"tasks": value} if isinstance(value, list) else value


RetentionOption = Annotated[RetentionConfig | None, BeforeValidator(_switch)]


def require_lm_eval() -> None:
    if importlib.util.find_spec("lm_eval") is None:
        raise PeftbenchError(f"retention needs lm-evaluation-harness; run: {INSTALL} (or drop `retention:`)")


def check_retention(config: RetentionConfig | None) -> None:
    """Before any run trains: lm-eval is installed and the custom task folder exists."""
    if config is None:
        return
    require_lm_eval()
    if config.include_path and not Path(config.include_path).is_dir():
        raise PeftbenchError(
            f"retention.include_path '{config.include_path}' is not a folder; give the folder of your "
            "task YAMLs (relative paths are from the directory the run starts in)"
        )
