"""Catalogue of issue 14: each bad name, corrupted file, override or number ends in one error line."""

import pytest

from peftbench.config import build_config
from peftbench.errors import PeftbenchError


@pytest.mark.parametrize("name", ["../../../escaped", "/tmp/abs", "..", ".", "a/b", "with space", "", "-x"])
def test_method_names_that_leave_the_experiment_are_refused(experiment, name):
    experiment["methods"][0]["name"] = name
    with pytest.raises(PeftbenchError, match="methods.0.name.*not a valid name; use letters, digits"):
        build_config(experiment)


@pytest.mark.parametrize("name", ["..", "../up", "/abs", "a/b", "x y", "a\\b"])
def test_experiment_names_that_leave_output_dir_are_refused(experiment, name):
    experiment["name"] = name
    with pytest.raises(PeftbenchError, match="config key 'name'.*not a valid name"):
        build_config(experiment)


def test_sweep_values_that_make_a_path_are_refused(experiment):
    experiment["methods"] = [{"method": "lora", "sweep": {"target_modules": [["query"], ["../x"]]}}]
    with pytest.raises(PeftbenchError, match="run name from sweep values 'lora-tm../x' is not a valid name"):
        build_config(experiment)


def test_valid_names_pass(experiment):
    experiment["name"] = "exp_1.v2"
    experiment["methods"][0]["name"] = "full-lr1e-3+x=y"
    assert build_config(experiment).methods[0].run_name == "full-lr1e-3+x=y"
