"""Typed experiment configs: defaults <- YAML <- command-line overrides. The schema and the overrides;
reading the YAML and what needs the method and task registries to check are in peftbench.inputs.experiment."""

from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, field_validator, model_validator

from peftbench.config.data_config import DataConfig
from peftbench.config.forgetting_config import (
    ForgettingConfig,
    ForgettingOption,
    InterpolationConfig,
    InterpolationOption,
)
from peftbench.config.retention_config import RetentionOption
from peftbench.config.schema import NumbersAreNumbers, Strict, path_safe
from peftbench.config.search_config import LrSearchConfig
from peftbench.errors import PeftbenchError, closest, first_line


class QuantizationConfig(Strict):
    """A k-bit base model through bitsandbytes (QLoRA: LoRA on a 4-bit base); only adapters train on it."""

    bits: Literal[4, 8] = 4
    type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (ignored at 8 bits)")
    double_quant: bool = Field(True, description="Quantise the 4-bit scales too (~0.4 bits/param saved)")
    compute_dtype: Literal["bf16", "fp16", "fp32"] = Field(
        "bf16", description="dtype the 4-bit layers dequantise to for their matrix products"
    )


class ModelConfig(Strict):
    name: str = Field(description="Built-in alias (minilm, smollm2-135m), hub id, local dir or .gguf file")
    revision: str | None = None
    gguf_file: str | None = Field(None, description="GGUF file inside `name` when it is a directory")
    trust_remote_code: bool = False
    attn_implementation: str | None = Field(
        None,
        description="eager, sdpa, flash_attention_2, ...; default: eager on a CPU under bf16 when attention "
        "heads have at most 32 dimensions (measured faster there), else transformers' own choice",
    )
    quantization: QuantizationConfig | None = Field(
        None, description="Load the base quantised to 4 or 8 bits (bitsandbytes); adapter methods only"
    )


class TrainingConfig(Strict):
    epochs: float = Field(3, gt=0)
    batch_size: int = Field(16, gt=0)
    eval_batch_size: int = Field(64, gt=0)
    learning_rate: float = Field(2e-5, gt=0)
    head_learning_rate: float | None = Field(
        None,
        gt=0,
        description="Learning rate of the task head (classifier and pooler; the output layer of LMs), in its "
        "own optimizer group; default: learning_rate. Fix it to compare methods on their body/adapter rate",
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Label smoothing ε of the training loss (the LoRA paper's E2E runs: 0.1); evaluation "
        "loss and perplexity stay the plain cross-entropy",
    )
    gradient_accumulation_steps: int = Field(1, gt=0)
    lr_scheduler: str = "linear"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 autocast on GPUs that support it (else fp16) and on CPUs with native bf16 "
        "(AVX512-BF16 or AMX), fp32 elsewhere; resolved once per experiment and recorded",
    )
    early_stopping_patience: int | None = Field(None, gt=0)
    logging_steps: int | None = Field(None, gt=0)  # None: about 20 losses per run, at most 10 steps apart
    checkpoint_every: int | None = Field(
        None,
        gt=0,
        description="Save a checkpoint every N optimizer steps (only the last kept); an interrupted run "
        "resumes from it. Default: none (an interrupted run starts again from step 0)",
    )
    checkpoint_minutes: float | None = Field(
        None, gt=0, description="Also save a checkpoint when this many minutes passed since the last one"
    )
    report_to: list[str] = Field(
        [], description="Experiment trackers, passed to the Trainer: tensorboard, mlflow, wandb, ..."
    )
    group_by_length: bool = Field(
        False,
        description="Batch examples of similar length: less padding, faster; off by default because on small "
        "data it made batches correlate with labels and cost accuracy (benchmarks/RESULTS.md)",
    )
    gradient_checkpointing: bool = Field(
        False, description="Keep activations only at block boundaries and recompute inside (non-reentrant)"
    )
    optim: str = Field(
        "adamw_torch_fused",
        description="The Trainer's optimizer: adamw_torch_fused, adamw_8bit, paged_adamw_8bit, adafactor, ..",
    )

    @field_validator("optim")
    @classmethod
    def _known_optimizer(cls, optim: str) -> str:
        from transformers.training_args import OptimizerNames

        names = [o.value for o in OptimizerNames]
        if optim not in names:
            raise ValueError(
                f"unknown optimizer '{optim}'{closest(optim, names)}; use one of transformers' "
                "OptimizerNames, e.g. adamw_torch_fused, adamw_8bit, paged_adamw_8bit, adafactor"
            )
        return optim


class GenerationConfig(Strict):
    """How generation tasks decode at evaluation time (greedy unless asked)."""

    max_new_tokens: int = Field(64, gt=0)
    num_beams: int = Field(1, gt=0)
    do_sample: bool = False
    temperature: float | None = Field(None, gt=0)
    top_p: float | None = Field(None, gt=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    no_repeat_ngram_size: int | None = Field(None, ge=0)
    length_penalty: float | None = Field(
        None,
        description="Beam search only: a beam's score is its summed log-probability / length**length_penalty "
        "(transformers' definition; below 1 favours shorter outputs, the LoRA paper's E2E decoding: 0.8)",
    )
    batch_size: int = Field(16, gt=0)
    num_samples: int = Field(5, ge=0, description="Generated samples copied into result.json")
    max_eval_prompts: int | None = Field(None, gt=0, description="Generate for at most this many prompts")
    report_metrics: list[str] | None = Field(
        None,
        min_length=1,
        description="The report's quality columns, primary first (default: bleu, rougeL, perplexity), e.g. "
        "the LoRA paper's E2E columns: [bleu, nist, meteor, rougeL, cider]",
    )

    @field_validator("report_metrics")
    @classmethod
    def _known_metrics(cls, names: list[str] | None) -> list[str] | None:
        from peftbench.metrics.text_metrics import TEXT_METRICS

        known = [*TEXT_METRICS, "perplexity", "loss"]
        unknown = [n for n in names or [] if n not in known]
        if unknown:
            name = unknown[0]
            raise ValueError(f"unknown metric '{name}'{closest(name, known)}; use any of: {', '.join(known)}")
        return names

    @model_validator(mode="after")
    def _length_penalty_needs_beams(self) -> "GenerationConfig":
        if self.length_penalty is not None and self.num_beams == 1:
            raise ValueError(
                "length_penalty applies to beam search only; set generation.num_beams above 1 "
                "(the LoRA paper's E2E decoding: 10) or drop length_penalty"
            )
        return self


class LauncherConfig(Strict):
    """How each run's process starts: one process, or data-parallel ranks through torchrun or accelerate
    (the Trainer runs DDP, or FSDP/DeepSpeed from an accelerate config file)."""

    kind: Literal["local", "torchrun", "accelerate"] = "local"
    num_processes: int = Field(
        1, ge=1, description="Ranks per run; the global batch stays training.batch_size"
    )
    config_file: str | None = Field(None, description="accelerate config (FSDP, DeepSpeed, several machines)")


class MethodConfig(NumbersAreNumbers):
    """One method entry: `method` picks the registry entry; other keys are that method's options."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    method: str
    name: str | None = Field(None, description="Run name; defaults to the method name")
    learning_rate: float | None = Field(None, gt=0, description="Overrides training.learning_rate")
    head_learning_rate: float | None = Field(None, gt=0, description="Overrides training.head_learning_rate")
    epochs: float | None = Field(None, gt=0)
    sweep: dict[str, list[Any]] | None = Field(
        None,
        description="Values to sweep, e.g. {r: [4, 8], learning_rate: [1e-4, 3e-4]}: one run per combination",
    )

    _safe_name = field_validator("name")(path_safe)

    @field_validator("sweep")
    @classmethod
    def _non_empty_sweep(cls, sweep: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        for key, values in (sweep or {}).items():
            if not values:
                raise ValueError(f"sweep.{key} is empty; give at least one value")
        return sweep

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def run_name(self) -> str:
        return self.name or self.method


class ExperimentConfig(Strict):
    name: str
    task: str = Field("classification", description="classification, causal_lm or generation")
    model: ModelConfig
    data: DataConfig
    training: TrainingConfig = TrainingConfig()
    generation: GenerationConfig = GenerationConfig()
    methods: list[MethodConfig] = Field(min_length=1)
    baselines: bool = Field(True, description="Also evaluate the majority class and the untrained model")
    seed: int = 42
    seeds: list[int] | None = Field(None, min_length=1, description="Repeat every run with each seed")
    data_fractions: list[Annotated[float, Field(gt=0, le=1)]] | None = Field(
        None, min_length=1, description="Repeat every run at each fraction of the data, each in (0, 1]"
    )
    lr_search: LrSearchConfig | None = Field(
        None, description="Pick each method's learning rate by a short search on the validation split"
    )
    launcher: LauncherConfig = LauncherConfig()
    output_dir: str = "runs"
    save_full_model: bool = Field(False, description="Save full fine-tuned weights (large)")
    forgetting: ForgettingOption = Field(ForgettingConfig(), description="false: no forgetting measured")
    interpolation: InterpolationOption = Field(InterpolationConfig(), description="false: no alpha curve")
    retention: RetentionOption = Field(
        None, description="lm-evaluation-harness tasks scored before and after training (off by default)"
    )

    _safe_name = field_validator("name")(path_safe)

    @field_validator("model", mode="before")
    @classmethod
    def _model_from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("methods")
    @classmethod
    def _unique_run_names(cls, methods: list[MethodConfig]) -> list[MethodConfig]:
        names = [m.run_name for m in methods]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"run names repeat: {duplicates}; give each entry a distinct `name`")
        return methods

    def method_training(self, method: MethodConfig) -> TrainingConfig:
        overrides = {
            k: v
            for k, v in {
                "learning_rate": method.learning_rate,
                "head_learning_rate": method.head_learning_rate,
                "epochs": method.epochs,
            }.items()
            if v is not None
        }
        return self.training.model_copy(update=overrides)


def _slot(node: Any, key: str, path: str) -> str | int:
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return int(key)
    if not isinstance(node, dict):
        raise PeftbenchError(f"override {path!r}: {key!r} is neither a section's key nor a list's index")
    return key


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides (methods.0.r=8 indexes a list); values parsed as YAML (safe loader)."""
    for item in overrides:
        if "=" not in item:
            raise PeftbenchError(f"override {item!r} has no '='; write it as key.path=value")
        path, value = item.split("=", 1)
        node = raw
        keys = path.strip().split(".")
        for key in keys[:-1]:
            slot = _slot(node, key, path)
            node = node.setdefault(slot, {}) if isinstance(node, dict) else node[slot]
        slot = _slot(node, keys[-1], path)
        try:
            node[slot] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise PeftbenchError(
                f"override {item!r}: the value is not valid YAML ({first_line(exc)}); "
                "quote strings, close brackets "
                "(e.g. --set 'training.epochs=1' or --set 'methods.0.target_modules=[query, value]')"
            ) from None
    return raw
