import pytest

from peftbench.demo import DEMOS, demo_config


@pytest.mark.parametrize("name", DEMOS)
def test_quick_demo_is_a_smaller_copy_of_the_full_one(name, tmp_path):
    full, quick = demo_config(name, False, str(tmp_path)), demo_config(name, True, str(tmp_path))
    assert quick.name != full.name
    assert quick.data.max_train_samples < (full.data.max_train_samples or 10**9)
    assert {m.method for m in quick.methods} <= {m.method for m in full.methods}
