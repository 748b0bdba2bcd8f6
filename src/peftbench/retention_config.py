"""The `retention:` section: lm-evaluation-harness tasks scored on the base model and on every trained
language-model run (docs/retention.md). Off unless given."""

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from peftbench.schema import Strict


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
