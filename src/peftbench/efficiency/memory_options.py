"""The training settings that change memory, as `inspect` and `probe-batch` account for them."""

from dataclasses import asdict, dataclass

from peftbench.config.config import QuantizationConfig
from peftbench.efficiency import optimizers


@dataclass(frozen=True)
class MemoryOptions:
    """The training settings that change memory: training.gradient_checkpointing, training.optim and
    model.quantization."""

    gradient_checkpointing: bool = False
    optim: str = "adamw_torch_fused"
    quantization: QuantizationConfig | None = None

    def as_dict(self) -> dict:
        quantization = self.quantization.model_dump() if self.quantization else None
        return {
            **asdict(self),
            "quantization": quantization,
            "optimizer_state": optimizers.describe(self.optim),
        }
