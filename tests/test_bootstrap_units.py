"""The paired perplexity bootstrap resamples independent units: prompts with all their references
(generation), documents with all their blocks (causal_lm), never single rows of target_losses.jsonl."""

import json

import numpy as np
import pytest
from conftest import WORDS
from transformers import AutoConfig

from peftbench.inputs.experiment import build_config
from peftbench.models import models
from peftbench.report.collect import RunGroup, paired_test
from peftbench.tasks import TASKS
from peftbench.tasks.language import TARGET_LOSSES_FILE, UNIT

PROMPTS, REFERENCES = 40, 8


def _prompt_data(seed: int = 0):
    """Eight references per prompt, rows interleaved (reference round after round, so a prompt's rows are
    never adjacent); how much training helps varies from prompt to prompt and hardly between the
    references of one prompt, as on E2E."""
    rng = np.random.default_rng(seed)
    units = np.tile(np.arange(PROMPTS), REFERENCES)
    tokens = rng.integers(5, 30, len(units))
    per_prompt = rng.normal(0, 0.6, PROMPTS)[units]
    tuned = tokens * (3.4 + per_prompt + rng.normal(0, 0.05, len(units)))
    zero_shot = tokens * (3.6 + rng.normal(0, 0.05, len(units)))
    return units, tokens, tuned, zero_shot


def _groups(tmp_path, units, tokens, losses: dict, seeds=(1,), with_units=True) -> list[RunGroup]:
    groups = []
    for name, sums in losses.items():
        runs = []
        for seed in seeds:
            folder = tmp_path / f"{name}-{seed}"
            folder.mkdir(parents=True)
            rows = [
                {
                    "index": i,
                    **({UNIT: int(u)} if with_units else {}),
                    "nll_sum": float(s),
                    "target_tokens": int(t),
                }
                for i, (u, s, t) in enumerate(zip(units, sums[seed], tokens, strict=True))
            ]
            (folder / TARGET_LOSSES_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
            data = {"data_fraction": 1.0}
            runs.append({"method": {"name": name}, "seed": seed, "data": data, "_dir": str(folder)})
        groups.append(RunGroup(name, runs))
    return groups


def _by_hand(units, tokens, mine: list, theirs: list, resamples=1000) -> tuple[float, float, float, float]:
    """numpy alone: draw prompt numbers as the function's generator does, take every row of every drawn
    prompt in every seed, and compare corpus perplexities."""
    rng = np.random.default_rng(0)

    def perplexity(sums: list, drawn) -> float:
        rows = np.concatenate([np.flatnonzero(units == k) for k in drawn])
        return np.exp(sum(s[rows].sum() for s in sums) / (len(sums) * tokens[rows].sum()))

    everything = np.arange(PROMPTS)
    observed = perplexity(mine, everything) - perplexity(theirs, everything)
    differences = []
    for _ in range(resamples):
        drawn = rng.integers(0, PROMPTS, PROMPTS)
        differences.append(perplexity(mine, drawn) - perplexity(theirs, drawn))
    differences = np.array(differences)
    p = min(1.0, 2 * np.mean(differences >= 0 if observed < 0 else differences <= 0))
    low, high = np.percentile(differences, [2.5, 97.5])
    return observed, low, high, p


@pytest.mark.parametrize(("task", "word"), [("generation", "prompts"), ("causal_lm", "documents")])
def test_perplexity_bootstrap_over_units_equals_numpy_by_hand(tmp_path, task, word):
    units, tokens, tuned, zero_shot = _prompt_data()
    shifted = tuned * 1.02  # a second seed whose losses differ
    losses = {"full": {1: tuned, 2: shifted}, "baseline-untrained": {1: zero_shot, 2: zero_shot * 0.99}}
    test = paired_test(*_groups(tmp_path, units, tokens, losses, seeds=(1, 2)), task, "perplexity")
    observed, low, high, p = _by_hand(units, tokens, [tuned, shifted], [zero_shot, zero_shot * 0.99])
    assert test["test"] == f"paired bootstrap over {PROMPTS} {word} (1000 resamples)"
    assert (test["units"], test["examples"], test["seeds"]) == (PROMPTS, PROMPTS * REFERENCES, 2)
    assert test["difference"] == pytest.approx(observed, rel=1e-12)
    assert (test["ci95_low"], test["ci95_high"]) == pytest.approx((low, high), rel=1e-12)
    assert test["p"] == pytest.approx(p, abs=1e-12)


def test_resampling_prompts_widens_the_interval_of_multi_reference_data(tmp_path):
    """Eight nearly equal rows per prompt are not eight independent examples: over prompts the interval
    is wider than over rows (the older, row-level test, still what a file without units gets)."""
    units, tokens, tuned, zero_shot = _prompt_data()
    losses = {"full": {1: tuned}, "baseline-untrained": {1: zero_shot}}
    prompts = paired_test(*_groups(tmp_path / "p", units, tokens, losses), "generation", "perplexity")
    rows = paired_test(
        *_groups(tmp_path / "r", units, tokens, losses, with_units=False), "generation", "perplexity"
    )
    assert prompts["difference"] == pytest.approx(rows["difference"], rel=1e-12)  # same data, same value
    width = prompts["ci95_high"] - prompts["ci95_low"]
    row_width = rows["ci95_high"] - rows["ci95_low"]
    assert width > 2 * row_width  # about sqrt(8) wider when prompts vary and their references agree
    assert rows["units"] == PROMPTS * REFERENCES and rows["test"].startswith(
        f"paired bootstrap over {PROMPTS * REFERENCES} rows (target_losses.jsonl records no units"
    )


def test_runs_that_disagree_on_units_fall_back_to_rows(tmp_path):
    units, tokens, tuned, zero_shot = _prompt_data()
    mine = _groups(tmp_path / "a", units, tokens, {"full": {1: tuned}})[0]
    theirs = _groups(tmp_path / "b", units[::-1], tokens, {"baseline-untrained": {1: zero_shot}})[0]
    assert "rows" in paired_test(mine, theirs, "generation", "perplexity")["test"]


def _config(model, data_file, tmp_path, **data):
    raw = {
        "name": "t",
        "task": data.pop("task"),
        "model": str(model),
        "data": {"dataset": str(data_file), **data},
        "generation": {"max_new_tokens": 6},
        "methods": [{"method": "full"}],
        "output_dir": str(tmp_path),
    }
    return build_config(raw)


def _load(config):
    source = models.resolve(config.model.name)
    tokenizer = models.load_tokenizer(source)
    model_config = AutoConfig.from_pretrained(source.path)
    return TASKS.get(config.task).load_data(config, tokenizer, model_config), tokenizer


def test_each_test_row_records_its_prompt_as_numbered_in_the_reference_groups(
    tiny_llama_lm, data_to_text_csv, tmp_path
):
    train = tmp_path / "train.csv"
    train.write_text("mr,ref\n" + "".join(f"food : {w} {v},{w} {v}\n" for w in WORDS for v in WORDS[:3]))
    config = _config(
        tiny_llama_lm,
        train,
        tmp_path,
        task="generation",
        prompt_template="{mr} :",
        target_column="ref",
        test_file=str(data_to_text_csv),
    )
    data, _ = _load(config)
    test, groups = data.splits["test"], data.test_references
    assert sorted(set(test[UNIT])) == list(range(len(groups))) == list(range(12))
    for row in test:
        prompt_length = sum(label == -100 for label in row["labels"])
        assert row["input_ids"][:prompt_length] == groups[row[UNIT]]["prompt_ids"]


def test_causal_lm_blocks_record_the_text_their_first_token_comes_from(tiny_gpt2, tmp_path):
    """Blocks cut from one long text share its number, so resampling documents keeps them together."""
    texts = [" ".join(WORDS * 3), "good drug", "", " ".join(WORDS[::-1] * 2), "bad pain works"]
    path = tmp_path / "texts.csv"
    path.write_text("text\n" + "".join(f"{w} {v}\n" for w in WORDS for v in WORDS))
    test = tmp_path / "test.csv"
    test.write_text("text\n" + "".join(f'"{t}"\n' for t in texts))
    config = _config(
        tiny_gpt2, path, tmp_path, task="causal_lm", text_column="text", test_file=str(test), max_length=8
    )
    data, tokenizer = _load(config)
    kept = [t for t in texts if t]  # empty texts are dropped before packing
    lengths = [len(tokenizer(t)["input_ids"]) + 1 for t in kept]  # each text ends with EOS
    starts = np.cumsum([0, *lengths])
    blocks = (starts[-1] // 8) * 8
    expected = [int(np.searchsorted(starts, b, side="right") - 1) for b in range(0, blocks, 8)]
    documents = list(data.splits["test"][UNIT])
    assert documents == expected
    assert documents.count(0) >= 3 and documents.count(2) >= 2  # the long texts span several blocks
