"""Property-based: configs mutated from a valid one, and random --set overrides, end either in a valid
config or in one PeftbenchError line, never a traceback. Fixed example budget and derandomized, so CI
time stays small and a failure reproduces."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peftbench.config.config import ExperimentConfig, apply_overrides
from peftbench.errors import PeftbenchError
from peftbench.inputs.experiment import build_config

BUDGET = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["..", "../x", "/abs", "a/b", "a b", "lora", "full", "classification", "bf16"]),
    st.lists(st.one_of(st.integers(-2, 9), st.floats(), st.text(max_size=4)), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)
PATHS = st.sampled_from(
    [
        "name",
        "task",
        "model",
        "output_dir",
        "seed",
        "seeds",
        "data_fractions",
        "baselines",
        "lr_search",
        "data",
        "data.max_length",
        "data.data_fraction",
        "data.label_names",
        "training",
        "training.epochs",
        "training.batch_size",
        "training.learning_rate",
        "training.precision",
        "training.checkpoint_every",
        "training.report_to",
        "generation.top_p",
        "launcher.num_processes",
        "launcher.kind",
        "methods",
        "methods.0",
        "methods.0.name",
        "methods.0.method",
        "methods.0.learning_rate",
        "methods.1.r",
        "methods.1.sweep",
        "methods.1.target_modules",
        "not_a_key",
    ]
)

YAML_CHARS = "[]{}:,'\"&*!|>-#%@` ab1.\t"
OVERRIDES = st.tuples(PATHS, st.one_of(st.text(max_size=10), st.text(alphabet=YAML_CHARS, max_size=8))).map(
    lambda pair: f"{pair[0]}={pair[1]}"
)


def _set(raw: dict, path: str, value) -> None:
    node = raw
    *parents, last = path.split(".")
    for key in parents:
        child = node[int(key)] if isinstance(node, list) else node.get(key)
        if not isinstance(child, dict | list):
            return  # an earlier mutation replaced the section: nothing to set inside it
        node = child
    if isinstance(node, list):
        node[int(last) % len(node)] = value
    else:
        node[last] = value


def _config_or_one_line(raw) -> None:
    try:
        config = build_config(raw)
    except PeftbenchError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(config, ExperimentConfig)


@BUDGET
@given(mutations=st.lists(st.tuples(PATHS, VALUES), min_size=1, max_size=3))
def test_mutated_configs_never_end_in_a_traceback(experiment, mutations):
    raw = copy.deepcopy(experiment)
    for path, value in mutations:
        _set(raw, path, value)
    _config_or_one_line(raw)


@BUDGET
@given(overrides=st.lists(st.one_of(st.text(max_size=30), OVERRIDES), min_size=1, max_size=3))
def test_random_overrides_never_end_in_a_traceback(experiment, overrides):
    try:
        raw = apply_overrides(copy.deepcopy(experiment), overrides)
    except PeftbenchError as exc:
        assert "\n" not in str(exc)
        return
    _config_or_one_line(raw)
