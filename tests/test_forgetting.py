"""Forgetting on general text and the alpha curve, on tiny random models."""

import copy
import json

import pytest
import torch
from conftest import WORDS
from transformers import AutoModelForCausalLM, AutoTokenizer

from peftbench.config.config import MethodConfig
from peftbench.config.forgetting_config import ForgettingConfig
from peftbench.forgetting import forgetting, retention
from peftbench.forgetting.interpolation import PROMPT_REASON, Interpolator, plain_tuned
from peftbench.inputs.experiment import build_config
from peftbench.inputs.run_inputs import prepare_inputs
from peftbench.methods import prepare_model
from peftbench.run.runner import run_method
from peftbench.tasks import TASKS, method_context

GENERAL = " ".join(WORDS * 3)


@pytest.fixture
def general_text(tmp_path):
    path = tmp_path / "general.txt"
    path.write_text("\n".join(f"{GENERAL} {word}" for word in WORDS))
    return path


def _config(tmp_path, model, data, task, methods, general, **extra):
    raw = {
        "name": "forget",
        "task": task,
        "model": str(model),
        "data": {"dataset": str(data), "text_column": "ref", "max_length": 12},
        "training": {"epochs": 1, "batch_size": 4, "learning_rate": 5e-2, "logging_steps": 2},
        "methods": methods,
        "forgetting": {"dataset": str(general), "max_tokens": 96, "block_size": 16, "batch_size": 2},
        "interpolation": {"alphas": [0, 0.5, 1], "max_eval_samples": 4},
        "output_dir": str(tmp_path / "runs"),
        **extra,
    }
    if task == "classification":
        raw["data"] = {"dataset": str(data), "max_length": 16}
    return build_config(raw)


def _run(config, index=0) -> tuple[dict, object]:
    inputs = prepare_inputs(config)
    folder = run_method(inputs, config.methods[index])
    return json.loads((folder / "result.json").read_text()), inputs


def test_before_is_the_base_models_loss_and_prompt_tuning_is_measured_without_its_prompt(
    tmp_path, tiny_gpt2, data_to_text_csv, general_text
):
    methods = [{"method": "prompt_tuning", "num_virtual_tokens": 3}, {"method": "full"}]
    config = _config(tmp_path, tiny_gpt2, data_to_text_csv, "causal_lm", methods, general_text)
    result, inputs = _run(config)
    measured = result["forgetting"]
    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    text = forgetting.build_text_set(
        config.forgetting, AutoTokenizer.from_pretrained(tiny_gpt2), base.config, "causal"
    )
    assert text.inputs.shape == (6, 16) and measured["tokens"] == 6 * 15
    assert measured["before"] == pytest.approx(forgetting.reference_loss(base, text), abs=1e-5)
    assert measured["after"] != pytest.approx(measured["before"], abs=1e-4)  # the prompt changes the model
    assert measured["value"] == pytest.approx(measured["after"] - measured["before"])
    assert result["interpolation"] is None and result["interpolation_info"]["reason"] == PROMPT_REASON
    full = json.loads((run_method(inputs, config.methods[1]) / "result.json").read_text())
    assert full["forgetting"]["before"] == measured["before"]  # one before value for every method
    points = {p["alpha"]: p for p in full["interpolation"]}
    assert points[0]["forgetting"] == pytest.approx(0, abs=1e-6)
    assert points[1]["forgetting"] == pytest.approx(full["forgetting"]["value"], abs=1e-5)
    assert points[0]["metric"] == "loss" and points[1]["value"] < points[0]["value"]


def test_forgetting_false_turns_both_off(tmp_path, tiny_gpt2, data_to_text_csv, general_text):
    methods = [{"method": "full"}]
    config = _config(
        tmp_path, tiny_gpt2, data_to_text_csv, "causal_lm", methods, general_text, interpolation=False
    )
    config = config.model_copy(update={"forgetting": None})
    result, inputs = _run(config)
    assert result["forgetting"] is None and result["interpolation"] is None
    assert not (inputs.directory / retention.CACHE_FOLDER).exists()


def test_encoder_without_mlm_head_gives_null_with_the_reason(tmp_path, tiny_bert, reviews_csv, general_text):
    methods = [{"method": "full"}]
    config = _config(tmp_path, tiny_bert, reviews_csv, "classification", methods, general_text)
    result, _ = _run(config)
    assert result["forgetting"]["value"] is None and result["forgetting"]["before"] is None
    assert "no masked-LM head" in result["forgetting"]["reason"]
    points = result["interpolation"]
    assert [p["alpha"] for p in points] == [0, 0.5, 1] and points[0]["metric"] == "accuracy"
    assert all(p["forgetting"] is None for p in points)


def test_masked_lm_loss_on_an_encoder_with_its_head(tmp_path, general_text):
    from conftest import TINY, _tokenizer
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = _tokenizer(tmp_path)
    config = BertConfig(vocab_size=len(tokenizer), **TINY)
    BertForMaskedLM(config).save_pretrained(tmp_path)
    head, why = forgetting.load_head_model(retention_source(tmp_path), "masked")
    assert why is None
    text = forgetting.build_text_set(ForgettingConfig(dataset=str(general_text)), tokenizer, config, "masked")
    assert (text.inputs == tokenizer.mask_token_id).sum() == text.tokens > 0
    assert forgetting.loss_per_token(head, text) == pytest.approx(forgetting.reference_loss(head, text))


def retention_source(path):
    from peftbench.models.models import ModelSource

    return ModelSource(str(path))


def _perturbed(path, entry, auto=AutoModelForCausalLM, task="causal_lm"):
    """A method applied to a tiny model with every trainable tensor moved, as training would."""
    torch.manual_seed(0)
    base = auto.from_pretrained(path).eval()
    context = method_context(TASKS.get(task), base, str(path), num_training_steps=4)
    tuned = prepare_model(copy.deepcopy(base), MethodConfig(**entry), context).eval()
    with torch.no_grad():
        for parameter in tuned.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.5)
    return base, tuned


@pytest.mark.parametrize(
    "entry",
    [{"method": "lora", "r": 2, "target_modules": ["c_attn"]}, {"method": "ia3"}, {"method": "full"}]
    + [{"method": "bitfit"}],
    ids=lambda e: e["method"],
)
def test_alpha_zero_is_the_base_and_alpha_one_the_tuned_model(tiny_gpt2, entry):
    base, tuned = _perturbed(tiny_gpt2, entry)
    ids = torch.randint(3, 15, (2, 7))
    with torch.no_grad():
        base_logits, tuned_logits = base(input_ids=ids).logits, tuned(input_ids=ids).logits
        assert not torch.allclose(base_logits, tuned_logits, atol=1e-3)
        moving = Interpolator(base, plain_tuned(tuned)[0])
        assert torch.equal(moving.set_alpha(0)(input_ids=ids).logits, base_logits)
        torch.testing.assert_close(moving.set_alpha(1)(input_ids=ids).logits, tuned_logits)
        halfway = moving.set_alpha(0.5)(input_ids=ids).logits
        assert not torch.allclose(halfway, base_logits, atol=1e-3)
        assert not torch.allclose(halfway, tuned_logits, atol=1e-3)


def test_kjv_default_text_is_real_prose():
    chapters = forgetting.kjv_chapters()
    assert len(chapters) == 1189  # the chapters of the King James Bible
    assert chapters[0].startswith("In the beginning God created")
    assert not any(c[0].isdigit() for c in chapters)  # verse numbers stripped


def test_report_shows_forgetting_the_tradeoff_and_the_curves(
    tmp_path, tiny_gpt2, data_to_text_csv, general_text
):
    from peftbench import report
    from peftbench.report.render import markdown

    methods = [{"method": "full"}, {"method": "lora", "r": 2, "target_modules": ["c_attn"]}]
    config = _config(tmp_path, tiny_gpt2, data_to_text_csv, "causal_lm", methods, general_text)
    inputs = prepare_inputs(config)
    results = [json.loads((run_method(inputs, m) / "result.json").read_text()) for m in config.methods]
    built = report.build(inputs.directory, "full")
    rows = {row["run"]: row for row in built.rows}
    assert rows["lora"]["forgetting"] == pytest.approx(results[1]["forgetting"]["value"])
    assert rows["lora"]["forgetting_metric"] == "loss"
    lora = next(s for s in built.verdict if s.startswith("**lora**"))
    assert "forgetting on general text" in lora and "(loss after − before)" in lora
    # no baseline ran, so neither is shown to have learned: no least-forgetting method is named
    assert "Least forgetting: none named" in " ".join(built.verdict)
    assert "perplexity against forgetting on general text" in built.figures
    assert any(title.startswith("Stability–plasticity") for title in built.figures)
    quality = markdown(built, {}).split("## Quality")[1].split("## Cost")[0]
    assert "| vs base | forgetting |" in quality and f"| {rows['lora']['forgetting']:+.3g} |" in quality


def _group(name, curves, values=None, accuracy=None):
    from peftbench.report.collect import RunGroup

    runs = [
        {
            "interpolation": curve,
            "forgetting": {"value": v},
            "method": {"name": name},
            "metrics": {"test": {"accuracy": accuracy}},
        }
        for curve, v in zip(curves, values or [None] * len(curves), strict=True)
    ]
    return RunGroup(name, runs)


def test_best_alpha_keeps_ninety_percent_of_the_gain_with_least_forgetting():
    from peftbench.report import stability
    from peftbench.report.summary import forgetting_summary
    from peftbench.report.tables import forgetting_text

    def point(alpha, value, lost):
        return {"alpha": alpha, "metric": "accuracy", "value": value, "forgetting": lost}

    curve = [point(0, 0.5, 0.0), point(0.5, 0.78, 0.01), point(0.75, 0.81, 0.03), point(1, 0.8, 0.05)]
    choice = stability.best_alpha(curve)
    assert choice["alpha"] == 0.5 and choice["gain_kept"] == pytest.approx(0.28 / 0.31)
    assert stability.best_alpha([*curve[:1], point(0.5, 0.6, 0.0), *curve[2:]])["alpha"] == 0.75
    two_seeds = _group("lora", [curve, [point(a, v + 0.02, f) for a, v, f in [(0, 0.5, 0), (1, 0.8, 0.07)]]])
    mean = stability.mean_curve(two_seeds)
    assert [p["alpha"] for p in mean] == [0, 0.5, 0.75, 1] and mean[-1]["forgetting"] == pytest.approx(0.06)
    columns = forgetting_summary(_group("full", [[], []], [0.1, 0.3]))
    assert columns["forgetting"] == pytest.approx(0.2) and columns["forgetting_ci95_low"] == pytest.approx(
        -1.0706, abs=1e-3
    )
    assert forgetting_text(columns) == "+0.2 [-1.07, +1.47]"
    assert "at α=0.5 keeps 90%" in stability.best_alpha_sentences([_group("lora", [curve])])[0]
    tuned_best = [point(0, 0.5, 0.0), point(0.5, 0.6, 0.02), point(1, 0.8, 0.01)]
    assert (
        "the tuned model (α=1) is the best"
        in stability.best_alpha_sentences([_group("full", [tuned_best])])[0]
    )


def test_a_curve_whose_base_is_best_says_so_and_missing_forgetting_is_explained():
    from peftbench.report import stability

    def point(alpha, value):
        return {"alpha": alpha, "metric": "accuracy", "value": value, "forgetting": None}

    falling = [point(0, 0.69), point(0.5, 0.62), point(1, 0.59)]
    assert stability.best_alpha(falling) is None
    (sentence,) = stability.best_alpha_sentences([_group("full", [falling])])
    assert (
        sentence.startswith("**full**: no α > 0 improves validation accuracy") and "0.59 at α=1" in sentence
    )
    reason = "the checkpoint carries no masked-LM head"
    full, ia3, lora = _group("full", [[], []]), _group("ia3", [[]]), _group("lora", [[]], [0.1])
    for run in [*full.runs, *ia3.runs]:
        run["forgetting"] = {"value": None, "reason": reason}
    assert stability.unmeasured_forgetting([full, ia3, lora]) == [
        f"forgetting not measured for full, ia3: {reason}"
    ]
    assert stability.unmeasured_forgetting([lora]) == []


@pytest.mark.parametrize(
    "entry", [{"method": "lora", "r": 2, "target_modules": ["query", "value"]}, {"method": "ia3"}], ids=str
)
def test_a_classifiers_merged_adapter_and_trained_head_interpolate_from_the_fresh_head(tiny_bert, entry):
    from transformers import AutoModelForSequenceClassification

    base, tuned = _perturbed(tiny_bert, entry, AutoModelForSequenceClassification, "classification")
    with torch.no_grad():
        ids = torch.randint(5, 15, (3, 6))
        moving = Interpolator(base, plain_tuned(tuned)[0])
        assert any("classifier" in key for key in moving.pairs)  # the head moves too
        assert torch.equal(moving.set_alpha(0)(input_ids=ids).logits, base(input_ids=ids).logits)
        torch.testing.assert_close(moving.set_alpha(1)(input_ids=ids).logits, tuned(input_ids=ids).logits)


def test_a_decoder_classifier_is_scored_through_the_checkpoints_lm_head(
    tmp_path, tiny_llama_lm, reviews_csv, general_text
):
    methods = [{"method": "lora", "r": 2, "target_modules": ["q_proj", "v_proj"]}]
    config = _config(tmp_path, tiny_llama_lm, reviews_csv, "classification", methods, general_text)
    result, inputs = _run(config)
    measured = result["forgetting"]
    lm = AutoModelForCausalLM.from_pretrained(tiny_llama_lm).eval()
    text = forgetting.build_text_set(config.forgetting, inputs.tokenizer, lm.config, "causal")
    assert measured["reason"] is None
    assert measured["before"] == pytest.approx(forgetting.reference_loss(lm, text), abs=1e-5)
    assert measured["value"] != pytest.approx(0, abs=1e-6)  # the tuned body changed the LM's loss


def test_tradeoff_plot_needs_two_methods_with_forgetting():
    from peftbench.report import plots, stability

    full, lora = _group("full", [[]], [0.3], 0.9), _group("lora", [[]], [0.1], 0.85)
    unmeasured = _group("head", [[]], [None], 0.7)
    assert stability.tradeoff_plot([full, unmeasured], "accuracy") is None  # one point: no frontier
    assert stability.tradeoff_plot([full, lora, unmeasured], "accuracy").startswith(b"\x89PNG")
    worse = _group("bitfit", [[]], [0.4], 0.8)  # more forgetting and lower accuracy than full
    assert plots.frontier_to_draw([(0.3, 0.9), (0.1, 0.85), (0.4, 0.8)], True) == ([1, 0], [2])
    assert stability.tradeoff_plot([full, lora, worse], "accuracy") is not None
