"""Every PEFT method, registered from peft's own config mapping: options pass straight to its config class."""

import copy
import dataclasses

from peft import PeftConfig, PromptLearningConfig, TaskType, get_peft_model
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
from peft.tuners.tuners_utils import check_target_module_exists
from peft.utils.other import ModulesToSaveWrapper
from torch import nn
from transformers import TrainerCallback

from peftbench.errors import PeftbenchError, closest
from peftbench.methods.base import METHODS, Method, MethodContext, no_callbacks

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


def _check_targets(model: nn.Module, config: PeftConfig, given) -> None:
    """Fail fast, in one line, when target_modules match nothing, judged by PEFT's own matching rules
    (names, dotted suffixes like attention.self.query, or a regex string)."""
    targets = getattr(config, "target_modules", None)
    if not targets or targets == "all-linear":
        return
    if any(check_target_module_exists(config, name) for name, _ in model.named_modules()):
        return
    linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
    raise PeftbenchError(
        f"target_modules {given} match no module in {type(model).__name__}; "
        f"linear layers here are named: {', '.join(linear)} (or use all-linear)"
    )


def trains_fresh_head(config_cls: type[PeftConfig]) -> bool:
    """Whether the method can train a fresh task head: through PEFT's modules_to_save, which some configs
    lack (adaption_prompt, trainable_tokens, xlora)."""
    return "modules_to_save" in {f.name for f in dataclasses.fields(config_cls)}


def _with_head(options: dict, config_cls: type[PeftConfig], context: MethodContext) -> dict:
    """The task's fresh head (and pooler) trained and saved with the adapter, whatever the model calls it."""
    if not context.fresh_head or not trains_fresh_head(config_cls):
        return options
    given = options.get("modules_to_save") or []
    given = [given] if isinstance(given, str) else list(given)
    return {**options, "modules_to_save": list(dict.fromkeys([*given, *context.head_modules]))}


def _is_named(key: str, names: list[str]) -> bool:
    """Whether module `key` is one of `names`: a whole dotted name, as PEFT matches target_modules."""
    return any(key == name or key.endswith(f".{name}") for name in names)


def _intended(config: PeftConfig, given: list[str]) -> list[str]:
    """The modules_to_save asked for: `given`, plus what PEFT adds for tied embeddings, but not the
    'classifier' and 'score' it adds itself for classification (the task's head definition names the head)."""
    auto = ("classifier", "score") if config.task_type == TaskType.SEQ_CLS else ()
    added = [name for name in config.modules_to_save or [] if name not in given and name not in auto]
    return [*given, *added, *(getattr(config, "modules_to_tie", None) or [])]


def _keep_named_heads(model: nn.Module, names: list[str]) -> None:
    """PEFT wraps every module whose name ends with a modules_to_save entry as a string, and for
    classification adds 'classifier' and 'score' itself, so 'classifier' also wraps DistilBERT's
    `pre_classifier`. Every wrapped module that none of `names` names is put back as it was, frozen."""
    inner = model.get_base_model()
    for key, module in list(inner.named_modules()):
        if isinstance(module, ModulesToSaveWrapper) and not _is_named(key, names):
            parent, _, child = key.rpartition(".")
            setattr(inner.get_submodule(parent), child, module.original_module)


def _preparer(config_cls: type[PeftConfig]):
    fields = {f.name for f in dataclasses.fields(config_cls)}

    def prepare(model: nn.Module, options: dict, context: MethodContext) -> nn.Module:
        options = copy.deepcopy(options)  # PEFT extends lists in place (modules_to_save); keep the user's
        if options.get("prompt_tuning_init", "").upper() == "TEXT":
            options.setdefault("tokenizer_name_or_path", context.model_path)
            options.setdefault("tokenizer_kwargs", context.tokenizer_kwargs or None)
        if "total_step" in fields:
            options.setdefault("total_step", max(context.num_training_steps, 1))
        options = _with_head(options, config_cls, context)
        given = options.get("modules_to_save") or []
        given = [given] if isinstance(given, str) else list(given)
        config = config_cls(task_type=context.peft_task_type, **options)
        _check_targets(model, config, options.get("target_modules"))
        prepared = get_peft_model(model, config)
        if "modules_to_save" in fields:
            _keep_named_heads(prepared, _intended(prepared.peft_config[prepared.active_adapter], given))
        return prepared

    return prepare


class RankAllocation(TrainerCallback):
    """Calls the adapter's update_and_allocate after every optimizer step, before gradients are cleared
    (AdaLoRA's rank budget; AdaMSS's subspace selection), as PEFT's own training loops do."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.model.base_model.update_and_allocate(state.global_step)


def _callbacks(peft_type):
    if not hasattr(PEFT_TYPE_TO_TUNER_MAPPING.get(peft_type), "update_and_allocate"):
        return no_callbacks
    return lambda model: [RankAllocation(model)]


def _register_all() -> None:
    for peft_type, config_cls in PEFT_TYPE_TO_CONFIG_MAPPING.items():
        name = peft_type.value.lower()
        METHODS.register(name)(
            Method(
                summary=f"PEFT {name} adapter (options: {config_cls.__name__})",
                saved_as="adapter",
                validate=_options_validator(name, config_cls),
                prepare=_preparer(config_cls),
                callbacks=_callbacks(peft_type),
            )
        )


_register_all()
