"""What each method can do, derived rather than written by hand: from the method registry (what a run
ships, which methods train the base's own weights) and from PEFT itself (which task types a config accepts,
whether a tuner's layers implement `merge`, whether a tuner dispatches bitsandbytes layers).
tests/test_capabilities.py confirms every claim on tiny models, in both directions."""

import ast
import dataclasses
import functools
import importlib.util
import inspect
import textwrap
import warnings
from dataclasses import dataclass

from peft import PeftConfig, PeftType, PromptLearningConfig, TaskType
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer

from peftbench.methods import METHODS
from peftbench.methods.peft_methods import trains_fresh_head
from peftbench.tasks import TASKS

SHIPS = {"model": "full model", "trainable": "trained weights", "adapter": "adapter"}
PEFT_TYPES = {peft_type.value.lower(): peft_type for peft_type in PEFT_TYPE_TO_CONFIG_MAPPING}
PAST_KEY_VALUES = {PeftType.PREFIX_TUNING, PeftType.CARTRIDGE}  # as PEFT's PeftModel routes them


@dataclass(frozen=True)
class Capabilities:
    method: str
    tasks: tuple[str, ...]  # the tasks it trains on (on at least one architecture; see docs/methods.md)
    merges: bool | None  # folds into the base weights (merge_and_unload); None: not an adapter
    # "yes": trains on a 4/8-bit (bitsandbytes) base through PEFT's own k-bit layers (or leaves the base's
    # layers alone); "no": refused (its own weights would train) or trains on no task; "no PEFT layer": PEFT
    # wraps the 4-bit layer in its plain layer, which may train but is not PEFT-supported (nor mergeable)
    kbit_base: str
    ships: str  # what a run saves: the full model, the trained weights, or an adapter
    bench_merged: bool  # bench-inference times it merged into the base, besides base + adapter


def _accepts(config_cls: type[PeftConfig], task_type: TaskType) -> bool:
    """PEFT's own check of the task type, made when the config is built (CPT: causal LMs only). total_step
    is supplied as the method's preparation supplies it (AdaLoRA refuses a config without it)."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # configs warn about their defaults here (no target modules yet)
        try:
            config_cls(task_type=task_type, **({"total_step": 1} if "total_step" in fields else {}))
        except ValueError:
            return False
    return True


def _trains_alone(config_cls: type[PeftConfig]) -> bool:
    """Poly and multitask prompt tuning route every example by a task id (n_tasks, num_tasks) that no
    peftbench task passes; X-LoRA mixes already-trained LoRA adapters (adapters), on a model without cache."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    return not fields & {"n_tasks", "num_tasks", "adapters"}


def _classifies(peft_type, config_cls: type[PeftConfig]) -> bool:
    """Classification trains a fresh head, through PEFT's modules_to_save. PEFT feeds prefix tuning and
    cartridges to a classifier's backbone as past_key_values, which transformers 5's sequence-classification
    models no longer take."""
    return trains_fresh_head(config_cls) and peft_type not in PAST_KEY_VALUES


def _peft_tasks(peft_type) -> tuple[str, ...]:
    """Tasks whose model classes' PEFT task types the method's config accepts."""
    config_cls = PEFT_TYPE_TO_CONFIG_MAPPING[peft_type]
    if not _trains_alone(config_cls):
        return ()
    return tuple(
        name
        for name in TASKS
        if any(_accepts(config_cls, t) for t in TASKS.get(name).peft_task_types)
        and (_classifies(peft_type, config_cls) or not TASKS.get(name).fresh_head)
    )


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found))


def _package(tuner: type) -> str:
    return tuner.__module__.rpartition(".")[0]


def merges_into_base(peft_type) -> bool:
    """A layer-injecting tuner (a BaseTuner, which has merge_and_unload) whose layers implement merge:
    BaseTunerLayer's merge raises NotImplementedError (Poly's layers keep it). Prompt-learning methods
    leave the base untouched and have nothing to fold into it."""
    tuner = PEFT_TYPE_TO_TUNER_MAPPING[peft_type]
    if not issubclass(tuner, BaseTuner):
        return False
    return any(_implemented(cls.merge) for cls in _layers(tuner))


def _layers(tuner: type) -> list[type]:
    """The tuner's layer classes: BaseTunerLayer subclasses defined in the tuner's package."""
    inside = f"{_package(tuner)}."
    return [cls for cls in _subclasses(BaseTunerLayer) if cls.__module__.startswith(inside)]


def _implemented(function) -> bool:
    """Overridden, and not only to raise (Lily's and ShadowPEFT's layers raise NotImplementedError)."""
    if function is BaseTunerLayer.merge:
        return False
    body = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return not (len(body) == 1 and isinstance(body[0], ast.Raise))


def kbit_layers(peft_type) -> bool:
    """Whether PEFT has bitsandbytes 4/8-bit layers for the tuner (a `bnb` module, its dispatch_bnb_8bit and
    dispatch_bnb_4bit); prompt-learning methods never touch the base's layers and need none."""
    if issubclass(PEFT_TYPE_TO_CONFIG_MAPPING[peft_type], PromptLearningConfig):
        return True
    tuner = PEFT_TYPE_TO_TUNER_MAPPING[peft_type]
    return importlib.util.find_spec(f"{_package(tuner)}.bnb") is not None


def capabilities(name: str) -> Capabilities:
    method = METHODS.get(name)
    ships = SHIPS[method.saved_as]
    if name not in PEFT_TYPES:  # full, freeze, bitfit, head: they train the base's own weights
        return Capabilities(name, tuple(TASKS), None, "no", ships, False)
    peft_type = PEFT_TYPES[name]
    merges = merges_into_base(peft_type)
    tasks = _peft_tasks(peft_type)
    kbit = "no" if not tasks else "yes" if kbit_layers(peft_type) else "no PEFT layer"
    bench_merged = method.saved_as == "adapter" and merges  # bench-inference takes adapter runs only
    return Capabilities(name, tasks, merges, kbit, ships, bench_merged)


@functools.cache
def table() -> tuple[Capabilities, ...]:
    """Every registered method's row, built once (it inspects every PEFT tuner's layer classes)."""
    return tuple(capabilities(name) for name in METHODS)


def _yes(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


HEADERS = ("method", "tasks", "merges", "4/8-bit base", "ships", "bench merged")


def cells(row: Capabilities) -> tuple[str, ...]:
    """One row as words, in the order of HEADERS (the terminal and the docs show the same)."""
    tasks = ", ".join(row.tasks) or "none"
    return (row.method, tasks, _yes(row.merges), row.kbit_base, row.ships, _yes(row.bench_merged))


def record(row: Capabilities) -> dict:
    """The figures --json and --csv write per method (under `capabilities`)."""
    return {
        key: list(value) if key == "tasks" else value for key, value in vars(row).items() if key != "method"
    }


def method_records() -> list[dict]:
    """`peftbench methods` per method: what it trains, what it saves, and its capabilities."""
    found = [(row, METHODS.get(row.method)) for row in table()]
    return [
        {"kind": "method", "name": row.method, "summary": method.summary, "saved_as": method.saved_as}
        | {"capabilities": record(row)}
        for row, method in found
    ]


def shown_rows() -> list[dict]:
    return [dict(zip(HEADERS, cells(row), strict=True)) for row in table()]


def markdown() -> str:
    """The table as docs/methods.md shows it (tests/test_capabilities.py keeps the page in sync)."""
    lines = [f"| {' | '.join(HEADERS)} |", f"|{'---|' * len(HEADERS)}"]
    lines += [f"| `{c[0]}` | {' | '.join(c[1:])} |" for c in map(cells, table())]
    return "\n".join(lines) + "\n"
