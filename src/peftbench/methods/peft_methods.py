"""Every PEFT method, registered from peft's own config mapping: options pass straight to its config class."""

import dataclasses

from peft import PeftConfig, PromptLearningConfig, get_peft_model
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from torch import nn

from peftbench.errors import PeftbenchError, closest
from peftbench.methods import METHODS, Method, MethodContext

# Friendly names users expect from LoRA papers and other tools -> PEFT's field names.
ALIASES = {"alpha": "lora_alpha", "dropout": "lora_dropout", "rank": "r"}
PROMPT_DEFAULTS = {"num_virtual_tokens": 20}


def _options_validator(name: str, config_cls: type[PeftConfig]):
    fields = {f.name for f in dataclasses.fields(config_cls)} - {"task_type", "peft_type"}

    def validate(options: dict) -> dict:
        renamed = {ALIASES.get(k, k) if ALIASES.get(k) in fields else k: v for k, v in options.items()}
        unknown = [k for k in renamed if k not in fields]
        if unknown:
            raise PeftbenchError(
                f"method '{name}' has no option '{unknown[0]}'{closest(unknown[0], fields)}; "
                f"see {config_cls.__name__} in the PEFT docs"
            )
        if issubclass(config_cls, PromptLearningConfig):
            renamed = {**PROMPT_DEFAULTS, **renamed}
        return renamed

    return validate


def _check_targets(model: nn.Module, options: dict) -> None:
    targets = options.get("target_modules")
    if not targets or targets == "all-linear":
        return
    targets = [targets] if isinstance(targets, str) else list(targets)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if len(missing) == len(targets):
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise PeftbenchError(
            f"target_modules {targets} match no module in {type(model).__name__}; "
            f"linear layers here are named: {', '.join(linear)} (or use all-linear)"
        )


def _preparer(config_cls: type[PeftConfig]):
    def prepare(model: nn.Module, options: dict, context: MethodContext) -> nn.Module:
        options = dict(options)
        if options.get("prompt_tuning_init", "").upper() == "TEXT":
            options.setdefault("tokenizer_name_or_path", context.model_path)
            options.setdefault("tokenizer_kwargs", context.tokenizer_kwargs or None)
        if "total_step" in {f.name for f in dataclasses.fields(config_cls)}:
            options.setdefault("total_step", max(context.num_training_steps, 1))
        _check_targets(model, options)
        config = config_cls(task_type=context.peft_task_type, **options)
        return get_peft_model(model, config)

    return prepare


def _register_all() -> None:
    for peft_type, config_cls in PEFT_TYPE_TO_CONFIG_MAPPING.items():
        name = peft_type.value.lower()
        METHODS.register(name)(
            Method(
                summary=f"PEFT {name} adapter (options: {config_cls.__name__})",
                ships="adapter",
                validate=_options_validator(name, config_cls),
                prepare=_preparer(config_cls),
            )
        )


_register_all()
