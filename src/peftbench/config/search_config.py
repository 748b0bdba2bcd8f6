"""The `lr_search` section (docs/grids.md). config.py assembles it with the other sections."""

from typing import Annotated, Literal

from pydantic import Field

from peftbench.config.schema import Strict


class LrSearchConfig(Strict):
    """Fair-comparison mode: a short run per candidate rate and method, scored on the validation split."""

    learning_rates: list[Annotated[float, Field(gt=0)]] = Field(
        [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3], min_length=2, description="Candidate rates, tried per method"
    )
    epochs: float = Field(1, gt=0, description="Training epochs of each search run")
    metric: str = Field(
        "loss", description="Validation metric that picks the rate: loss (lower wins), accuracy, f1_macro"
    )
    max_train_samples: int | None = Field(None, gt=0, description="Train each search run on a subset")
    strategy: Literal["halving", "exhaustive"] = Field(
        "halving",
        description="halving: successive halving (Optuna), clearly losing rates stop early; exhaustive: "
        "every rate trains all its epochs",
    )
    reduction_factor: int = Field(
        3, ge=2, description="halving: a rung keeps the best 1/reduction_factor of its rates (at least one)"
    )
    rungs: int = Field(
        3,
        ge=2,
        description="halving: points a run is scored at; the first after 1/reduction_factor^(rungs-1) of it "
        "or after the warm-up, whichever is later (fewer rungs when the rest would reach the run's end)",
    )

    @property
    def lower_is_better(self) -> bool:
        return self.metric in ("loss", "perplexity")
