"""Every config in configs/examples/ (one per seed in the seed documents): valid, and its methods give the
parameter counts the seeds publish, PEFT's own count and the hand formula, on a config-only model of the
real architecture (tests/data/offline_hub.yaml; meta device: shapes, no weights, no hub)."""

import copy
import re
from pathlib import Path

import pytest
import yaml
from peft import PeftModel
from transformers import AutoConfig

from peftbench.config.config import MethodConfig
from peftbench.efficiency.estimate import meta_model
from peftbench.errors import PeftbenchError
from peftbench.grid.grid import expand_methods
from peftbench.inputs.experiment import build_config, read_yaml
from peftbench.measure.measure import count_parameters
from peftbench.methods import prepare_model
from peftbench.models import models
from peftbench.tasks import TASKS, method_context

ROOT = Path(__file__).parents[1]
EXAMPLES = sorted((ROOT / "configs" / "examples").glob("*.yaml"))
HUB = yaml.safe_load((Path(__file__).parent / "data" / "offline_hub.yaml").read_text())
SEEDS = {"000", "001", "002", "003", "004"}  # the seed documents, /work/shared/seeds/NNN_*.txt

# (config, run) -> trainable parameters as the seed published them, and what differs in peftbench.
PUBLISHED = {
    # seed 001 line 196: "LoRA: 11,276,290" = 11,272,192 adapter + its 2048x2 head with a bias (4,098);
    # transformers' LlamaForSequenceClassification.score has no bias: 2 fewer.
    ("seed001-imdb-llama-3.2-1b", "lora-r16"): 11_276_290 - 2,
    # seed 001 line 195: "Baseline: 505,960,450": 4 of 16 blocks, final norm, embeddings, head (bias: -2).
    ("seed001-imdb-llama-3.2-1b", "freeze-12"): 505_960_450 - 2,
    # seed 004 line 33: "Trainable parameters (weights) 124,439,808 405,504".
    ("seed004-wikitext-gpt2", "full"): 124_439_808,
    ("seed004-wikitext-gpt2", "lora"): 405_504,
}
# (config, run) -> adapter parameters alone (the LoRA matrices, no head).
ADAPTERS = {
    ("seed001-imdb-llama-3.2-1b", "lora-r16"): 11_272_192,  # Llama-3.2-1B, r 16 on 7 projections
    ("seed000-e2e-gpt2", "lora"): 147_456,  # GPT-2, r 4 on c_attn (the LoRA paper's setting)
}
# (config, run) -> (low, high): a rounded figure the seed printed; the exact count must round to it.
ROUNDED = {
    ("seed000-e2e-gpt2", "lora-r32"): (1_150_000, 1_250_000),  # seed 000 line 42: "1.2M"
    ("seed000-sst2-roberta", "lora-r16-qkv"): (1_470_000, 1_480_000),  # seed 000 line 82: "1.47M"
}
# (config) -> total parameters of the task's model before any method, as the seed published them.
TOTALS = {
    "seed001-imdb-llama-3.2-1b": 1_235_818_498 - 2,  # seed 001 line 191 (its head's bias: -2)
    "seed004-wikitext-gpt2": 124_439_808,  # seed 004 line 33 (full fine-tuning trains all of GPT-2)
}


def _config(path: Path):
    return build_config(read_yaml(path))


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, models.ModelSource]:
    """A local folder holding only config.json per hub model, for peftbench's own meta_model."""
    found = {}
    for name, spec in HUB["models"].items():
        folder = tmp_path_factory.mktemp(re.sub(r"\W", "_", name))
        spec = dict(spec)
        AutoConfig.for_model(spec.pop("model_type"), **spec).save_pretrained(folder)
        found[name] = models.resolve(str(folder))
    return found


def _base(config, sources):
    task = TASKS.get(config.task)
    source = sources[config.model.name]
    return meta_model(source, task, HUB["datasets"].get(config.data.dataset, 2)), task, source


def _offline(entry: MethodConfig) -> MethodConfig:
    """A soft prompt initialised from text needs the tokenizer (the hub); its size does not depend on it."""
    if str(entry.options.get("prompt_tuning_init", "")).upper() != "TEXT":
        return entry
    return MethodConfig(**{**entry.model_dump(), "prompt_tuning_init": "RANDOM"})


def _prepared(config, entry, sources):
    base, task, source = _base(config, sources)
    context = method_context(task, base, source.path, num_training_steps=1000)
    return base, prepare_model(copy.deepcopy(base), _offline(entry), context), context


def _runs():
    return [
        pytest.param(path, entry, id=f"{path.stem}:{entry.run_name}")
        for path in EXAMPLES
        for entry in expand_methods(_config(path).methods)
    ]


def test_one_example_per_seed_named_after_it():
    numbers = [re.match(r"seed(\d{3})-", path.name) for path in EXAMPLES]
    assert all(numbers), [p.name for p, n in zip(EXAMPLES, numbers, strict=True) if not n]
    assert {n.group(1) for n in numbers} == SEEDS


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_and_its_model_is_known_offline(path):
    config = _config(path)
    assert config.name == path.stem
    assert config.model.name in HUB["models"], "add the model's config to tests/data/offline_hub.yaml"
    if config.task == "classification":
        assert config.data.dataset in HUB["datasets"], "add its label count to tests/data/offline_hub.yaml"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_an_unknown_key_in_an_example_fails_validation(path):
    raw = read_yaml(path)
    raw["training"]["epoch"] = 1
    with pytest.raises(PeftbenchError, match="unknown config key 'training.epoch'"):
        build_config(raw)
    raw = read_yaml(path)
    raw["methods"][-1]["rnk"] = 4
    with pytest.raises(PeftbenchError, match="rnk"):
        build_config(raw)


def _linear_sizes(model, targets: list[str]) -> int:
    """Sum of in + out features over the linear layers (nn.Linear or GPT-2's Conv1D) named by targets."""
    total = 0
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        matched = any(name == t or name.endswith(f".{t}") for t in targets)
        if matched and weight is not None and weight.dim() == 2 and not hasattr(module, "num_embeddings"):
            total += sum(weight.shape)
    return total


def _head(base, context) -> int:
    if not context.fresh_head:
        return 0
    return sum(p.numel() for name in context.head_modules for p in base.get_submodule(name).parameters())


def _blocks(base):
    body = base.base_model
    return getattr(body, "layers", None) or getattr(body, "h", None) or body.encoder.layer


def _hand_count(base, entry: MethodConfig, context) -> int:
    """Trainable parameters from the method's definition, independent of peftbench and PEFT."""
    options, total = entry.options, sum(p.numel() for p in base.parameters())
    if entry.method == "full":
        return total
    if entry.method == "lora":
        return options["r"] * _linear_sizes(base, options["target_modules"]) + _head(base, context)
    if entry.method == "prompt_tuning":
        return options["num_virtual_tokens"] * base.config.hidden_size
    if entry.method == "freeze":
        frozen = _blocks(base)[: options["frozen_layers"]]
        assert options["freeze_embeddings"] is False, "extend the formula to frozen embeddings"
        return total - sum(p.numel() for p in frozen.parameters())
    raise AssertionError(f"no hand formula for method '{entry.method}'; add one here")


@pytest.mark.parametrize(("path", "entry"), _runs())
def test_trainable_count_is_peft_s_and_the_hand_formula_s(path, entry, sources):
    base, model, context = _prepared(_config(path), entry, sources)
    counts = count_parameters(model)
    if isinstance(model, PeftModel):
        assert (counts["trainable_params"], counts["total_params"]) == model.get_nb_trainable_parameters()
    assert counts["trainable_params"] == _hand_count(base, entry, context)


@pytest.mark.parametrize(
    ("config_name", "run", "kind"),
    [(*key, "trainable") for key in PUBLISHED]
    + [(*key, "adapter") for key in ADAPTERS]
    + [(*key, "rounded") for key in ROUNDED],
)
def test_counts_the_seeds_publish(config_name, run, kind, sources):
    config = _config(ROOT / "configs" / "examples" / f"{config_name}.yaml")
    entry = next(e for e in expand_methods(config.methods) if e.run_name == run)
    _, model, _ = _prepared(config, entry, sources)
    trainable = count_parameters(model)["trainable_params"]
    if kind == "trainable":
        assert trainable == PUBLISHED[config_name, run]
    elif kind == "adapter":
        adapter = sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)
        assert adapter == ADAPTERS[config_name, run]
    else:
        low, high = ROUNDED[config_name, run]
        assert low <= trainable < high


@pytest.mark.parametrize("config_name", list(TOTALS))
def test_model_totals_the_seeds_publish(config_name, sources):
    base, _, _ = _base(_config(ROOT / "configs" / "examples" / f"{config_name}.yaml"), sources)
    assert count_parameters(base)["total_params"] == TOTALS[config_name]


@pytest.mark.slow
def test_seed_table_script_rows_carry_the_published_counts(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_table", ROOT / "scripts" / "seed_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = ROOT / "configs" / "examples" / "seed004-wikitext-gpt2.yaml"
    rows = script.rows_for(path, script.offline_sources(tmp_path))
    cells = {row.split(" | ")[1]: row.strip("| ").split(" | ") for row in rows}
    assert set(cells) == {"full", "lora"}
    for run, cell in cells.items():
        assert int(cell[2].replace(",", "")) == PUBLISHED["seed004-wikitext-gpt2", run]
        on_24, on_80 = int(cell[-2]), int(cell[-1])
        assert 0 < on_24 <= on_80
    assert len(script.HEADER.split(" | ")) == len(cells["full"])


def test_the_e2e_example_reports_the_lora_papers_columns_with_its_decoding():
    config = _config(ROOT / "configs" / "examples" / "seed000-e2e-gpt2.yaml")
    # the LoRA paper on E2E: BLEU, NIST, MET, ROUGE-L, CIDEr; beam 10, length penalty 0.8, no repeat 4-gram
    assert config.generation.report_metrics[:5] == ["bleu", "nist", "meteor", "rougeL", "cider"]
    decoding = config.generation
    assert (decoding.num_beams, decoding.length_penalty, decoding.no_repeat_ngram_size) == (10, 0.8, 4)
    assert config.training.label_smoothing == 0.1
