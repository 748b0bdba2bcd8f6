"""Generation and causal_lm data handling on tiny tokenizers: templates, masking, truncation, grouping."""

import logging

import pytest
from conftest import WORDS
from transformers import AutoConfig, AutoTokenizer, BartConfig, GPT2Config, LlamaConfig, T5Config

from peftbench.errors import PeftbenchError
from peftbench.inputs.datacache import load_task_data
from peftbench.inputs.experiment import build_config
from peftbench.models import models
from peftbench.tasks import TASKS
from peftbench.tasks.causal_lm import pack
from peftbench.tasks.generation import Encoder, keep_last, template_fields
from peftbench.tasks.language import IGNORE, MODEL_INPUTS, check_target_room, emptied


def _config(model, data_file, tmp_path, task="generation", **data):
    raw = {
        "name": "t",
        "task": task,
        "model": str(model),
        "data": {"dataset": str(data_file), "prompt_template": "{mr} :", "target_column": "ref", **data},
        "generation": {"max_new_tokens": 6},
        "methods": [{"method": "full"}],
        "output_dir": str(tmp_path),
    }
    return build_config(raw)


def _load(config):
    source = models.resolve(config.model.name)
    tokenizer = models.load_tokenizer(source)
    return TASKS.get(config.task).load_data(
        config, tokenizer, AutoConfig.from_pretrained(source.path)
    ), tokenizer


def test_template_fields_and_bad_templates():
    assert template_fields("Summarize: {article}\nTitle {title}: {article}") == ["article", "title"]
    with pytest.raises(PeftbenchError, match="not a valid template"):
        template_fields("broken {mr")
    with pytest.raises(PeftbenchError, match="not a column name"):
        template_fields("positional {}")


def test_generation_needs_template_and_target(tiny_llama_lm, data_to_text_csv, tmp_path):
    with pytest.raises(PeftbenchError, match="needs data.prompt_template"):
        _config(tiny_llama_lm, data_to_text_csv, tmp_path, prompt_template=None)


def test_template_naming_a_missing_column_is_a_clear_error(tiny_llama_lm, data_to_text_csv, tmp_path):
    config = _config(tiny_llama_lm, data_to_text_csv, tmp_path, prompt_template="{meaning} :")
    with pytest.raises(PeftbenchError, match=r"lacks column\(s\) \['meaning'\].*prompt_template"):
        _load(config)


def test_loss_is_on_target_tokens_only(tiny_llama_lm, data_to_text_csv, tmp_path):
    data, tokenizer = _load(_config(tiny_llama_lm, data_to_text_csv, tmp_path))
    expected = {}  # every (prompt, reference) row of the file, tokenised here independently
    for line in data_to_text_csv.read_text().splitlines()[1:]:
        mr, ref = line.split(",")
        prompt = tokenizer(f"{mr} :")["input_ids"]
        target = tokenizer(ref, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        expected[tuple(prompt + target)] = [IGNORE] * len(prompt) + target
    rows = data.splits["train"]
    assert len(rows) > 0
    for row in rows:
        assert row["labels"] == expected[tuple(row["input_ids"])]  # prompt masked, whole target kept
    assert rows[0]["input_ids"][0] == tokenizer.bos_token_id


def test_references_are_grouped_per_prompt(tiny_llama_lm, data_to_text_csv, tmp_path):
    # every meaning representation appears three times in the held-out test file; train has other inputs
    train = tmp_path / "train.csv"
    train.write_text("mr,ref\n" + "".join(f"food : {w} {v},{w} {v}\n" for w in WORDS for v in WORDS[:3]))
    config = _config(tiny_llama_lm, train, tmp_path, test_file=str(data_to_text_csv))
    data, _ = _load(config)
    assert len(data.test_references) == 12 and data.metadata["evaluation_prompts"] == 12
    assert all(len(group["references"]) == 3 for group in data.test_references)
    assert data.metadata["references_per_prompt"] == 3
    assert len(data.splits["test"]) == 36  # loss still covers every (prompt, reference) pair


def test_empty_targets_are_dropped_and_counted(tiny_llama_lm, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(
        "mr,ref\n"
        + "".join(f"name : {WORDS[i % 10]},{'' if i % 4 == 0 else 'good drug'}\n" for i in range(40))
    )
    data, _ = _load(_config(tiny_llama_lm, path, tmp_path))
    assert sum(data.metadata["dropped_empty_targets"].values()) == 10


def test_long_prompts_are_cut_from_the_left_with_a_count(tiny_llama_lm, tmp_path, caplog):
    path = tmp_path / "d.csv"
    long_mr = " ".join(["drug pain"] * 20)
    path.write_text("mr,ref\n" + "".join(f"{long_mr} {i % 3},good drug\n" for i in range(30)))
    with caplog.at_level(logging.WARNING, logger="peftbench"):
        data, tokenizer = _load(_config(tiny_llama_lm, path, tmp_path, max_length=16))
    assert data.metadata["truncated_prompts"]["train"] == len(data.splits["train"])
    assert all(len(ids) <= 16 for ids in data.splits["train"]["input_ids"])
    assert all(g["prompt_ids"][0] == tokenizer.bos_token_id for g in data.test_references)
    assert "truncated prompts" in caplog.text


def test_keep_last_keeps_bos():
    assert keep_last([1, 5, 6, 7, 8], 3, bos_id=1) == ([1, 7, 8], True)
    assert keep_last([5, 6], 3, bos_id=1) == ([5, 6], False)


def test_max_new_tokens_must_leave_room_for_a_prompt(tiny_llama_lm, data_to_text_csv, tmp_path):
    config = _config(tiny_llama_lm, data_to_text_csv, tmp_path, max_length=8)
    config.generation.max_new_tokens = 8
    with pytest.raises(PeftbenchError, match="leaves no room"):
        _load(config)


def test_tokenizer_without_pad_token_falls_back_to_eos(tiny_gpt2):
    raw = AutoTokenizer.from_pretrained(tiny_gpt2)
    assert raw.pad_token is None
    tokenizer = models.load_tokenizer(models.resolve(str(tiny_gpt2)))
    assert tokenizer.pad_token == tokenizer.eos_token


def test_seq2seq_model_given_causal_lm_is_refused(tiny_t5, data_to_text_csv, tmp_path):
    config = _config(tiny_t5, data_to_text_csv, tmp_path, task="causal_lm", text_column="ref")
    with pytest.raises(PeftbenchError, match="needs a decoder-only model"):
        _load(config)


def test_seq2seq_targets_are_labels_not_inputs(tiny_t5, data_to_text_csv, tmp_path):
    data, tokenizer = _load(_config(tiny_t5, data_to_text_csv, tmp_path))
    row = data.splits["train"][0]
    assert data.metadata["encoder_decoder"] is True
    assert row["labels"][-1] == tokenizer.eos_token_id and IGNORE not in row["labels"]


def test_pack_cuts_full_blocks():
    assert pack([[1, 2, 3], [4, 5], [6, 7, 8]], 3) == [[1, 2, 3], [4, 5, 6]]


def test_causal_lm_blocks(tiny_gpt2, data_to_text_csv, tmp_path):
    config = _config(tiny_gpt2, data_to_text_csv, tmp_path, task="causal_lm", text_column="ref", max_length=8)
    data, _ = _load(config)
    assert data.metadata["block_size"] == 8
    assert all(len(ids) == 8 for ids in data.splits["train"]["input_ids"])
    assert data.splits["train"]["labels"] == data.splits["train"]["input_ids"]


def test_causal_lm_split_smaller_than_a_block_is_an_error(tiny_gpt2, data_to_text_csv, tmp_path):
    config = _config(
        tiny_gpt2, data_to_text_csv, tmp_path, task="causal_lm", text_column="ref", max_length=64
    )
    with pytest.raises(PeftbenchError, match="not one full block"):
        _load(config)


@pytest.mark.parametrize("fixture", ["tiny_llama_lm", "tiny_t5"])
def test_cut_targets_end_with_eos_and_an_exact_fit_is_not_cut(fixture, request):
    tokenizer = models.load_tokenizer(models.resolve(str(request.getfixturevalue(fixture))))
    good, drug, pain = tokenizer.convert_tokens_to_ids(["good", "drug", "pain"])
    eos = tokenizer.eos_token_id
    encoder_decoder = fixture == "tiny_t5"
    fits = Encoder(tokenizer, False, encoder_decoder, 64, max_target=4)  # three words + EOS
    assert fits.target_ids(["good drug pain"]) == ([[good, drug, pain, eos]], 0)
    tight = Encoder(tokenizer, False, encoder_decoder, 64, max_target=3)
    assert tight.target_ids(["good drug pain", "good"]) == ([[good, drug, eos], [good, eos]], 1)


def test_every_training_target_ends_with_eos_when_cut(tiny_llama_lm, data_to_text_csv, tmp_path):
    data, tokenizer = _load(_config(tiny_llama_lm, data_to_text_csv, tmp_path, max_target_length=3))
    assert data.metadata["truncated_targets"]["train"] == len(
        data.splits["train"]
    )  # every target has 5 words
    for labels in data.splits["train"]["labels"]:
        target = [t for t in labels if t != IGNORE]
        assert len(target) == 3 and target[-1] == tokenizer.eos_token_id


def test_max_target_length_must_leave_room_for_the_prompt(tiny_llama_lm, data_to_text_csv, tmp_path):
    with pytest.raises(PeftbenchError, match="max_target_length=16 .* below data.max_length=16"):
        _config(tiny_llama_lm, data_to_text_csv, tmp_path, max_length=16, max_target_length=16)
    with pytest.raises(PeftbenchError, match="at least 2"):
        _config(tiny_llama_lm, data_to_text_csv, tmp_path, max_target_length=1)
    _config(tiny_llama_lm, data_to_text_csv, tmp_path, max_length=16, max_target_length=15)


def _long_targets(path, words: int) -> None:
    path.write_text(
        "mr,ref\n" + "".join(f"name : {WORDS[i % 10]},{' '.join(['drug'] * words)}\n" for i in range(30))
    )


def test_max_target_length_beyond_the_models_positions_is_an_error(tiny_gpt2, tmp_path):
    """data.max_length 256 passes the config check, but tiny GPT-2 has 64 positions: 100-token targets
    would leave every prompt empty (and overrun the position embeddings)."""
    path = tmp_path / "d.csv"
    _long_targets(path, 120)
    config = _config(tiny_gpt2, path, tmp_path, max_target_length=100)
    with pytest.raises(PeftbenchError, match=r"max_target_length=100 .* context of 64 tokens .* below 64$"):
        _load(config)


@pytest.mark.parametrize(
    ("model_config", "max_target", "fits"),
    [
        (GPT2Config(n_positions=64), 63, True),
        (GPT2Config(n_positions=64), 64, False),  # decoder-only: prompt and target share 64 positions
        (LlamaConfig(max_position_embeddings=32), 40, False),  # rotary, capped at the length it names
        (BartConfig(max_position_embeddings=32), 32, True),  # the decoder holds the target alone
        (BartConfig(max_position_embeddings=32), 33, False),
        (T5Config(), 255, True),  # relative positions, no limit: only data.max_length (256) counts
    ],
)
def test_target_room_is_judged_by_the_models_position_limit(model_config, max_target, fits):
    if fits:
        check_target_room(max_target, 256, model_config)
    else:
        with pytest.raises(PeftbenchError, match=f"max_target_length={max_target} "):
            check_target_room(max_target, 256, model_config)


def test_prompts_left_without_a_token_are_counted_and_warned(tiny_llama_lm, tmp_path, caplog):
    """max_target_length 15 of 16 leaves one position: the BOS, so every prompt loses all its words."""
    path = tmp_path / "d.csv"
    _long_targets(path, 20)
    with caplog.at_level(logging.WARNING, logger="peftbench"):
        data, tokenizer = _load(_config(tiny_llama_lm, path, tmp_path, max_length=16, max_target_length=15))
    assert data.metadata["dropped_prompts"]["train"] == len(data.splits["train"])
    assert data.metadata["dropped_prompts"]["generation"] == 0
    assert all(
        row[:1] == [tokenizer.bos_token_id] and row[1] != tokenizer.bos_token_id
        for row in data.splits["train"]["input_ids"]
    )
    assert f"train split: {len(data.splits['train'])} prompts kept none of their tokens" in caplog.text


def test_emptied_tells_a_prompt_cut_to_its_bos_from_a_short_one():
    assert emptied([1], cut=True, bos_id=1) and emptied([], cut=True, bos_id=None)
    assert not emptied([1], cut=False, bos_id=1)  # an empty template, not a cut
    assert not emptied([1, 7], cut=True, bos_id=1)


def test_training_batches_pad_right_when_data_comes_from_the_cache(tiny_llama_lm, tmp_path):
    path = tmp_path / "d.csv"
    targets = [" ".join(["drug"] * (1 + i % 5)) for i in range(30)]
    words = ["good", "great", "fine", "bad", "awful", "poor", "ok", "meh"]  # 8 prompts: the test is carved
    path.write_text("mr,ref\n" + "".join(f"name : {words[i % 8]},{t}\n" for i, t in enumerate(targets)))
    config = _config(tiny_llama_lm, path, tmp_path, max_length=32)
    source = models.resolve(config.model.name)
    model_config = AutoConfig.from_pretrained(source.path)
    task = TASKS.get(config.task)
    load_task_data(config, source, task, models.load_tokenizer(source), model_config)  # fills the cache
    tokenizer = models.load_tokenizer(source)
    tokenizer.padding_side = "left"  # as Llama-family tokenizers may load
    data = load_task_data(config, source, task, tokenizer, model_config)
    rows = [data.splits["train"][i] for i in range(len(data.splits["train"]))]
    short, long = min(rows, key=lambda r: len(r["input_ids"])), max(rows, key=lambda r: len(r["input_ids"]))
    assert len(short["input_ids"]) < len(long["input_ids"])
    collator = task.trainer_parts(tokenizer, None, data).collator
    batch = collator([{k: short[k] for k in MODEL_INPUTS}, {k: long[k] for k in MODEL_INPUTS}])
    size = len(short["input_ids"])
    assert batch["input_ids"][0, :size].tolist() == short["input_ids"]  # the text first, padding after
    assert batch["labels"][0, :size].tolist() == short["labels"]
    assert batch["attention_mask"][0, size:].sum() == 0 and batch["labels"][0, size:].eq(IGNORE).all()
    assert tokenizer.padding_side == "left"  # the caller's tokenizer is left as it was


@pytest.mark.parametrize(
    ("ids", "limit", "bos", "expected"),
    [
        ([7, 1, 2, 3], 4, 7, ([7, 1, 2, 3], False)),  # exactly at the limit: nothing cut
        ([7, 1, 2, 3, 4], 3, 7, ([7, 3, 4], True)),  # the leading BOS survives a left cut
        ([5, 1, 2, 3, 4], 3, 7, ([2, 3, 4], True)),  # no BOS in front: nothing is kept in its place
        ([7, 1, 2, 3, 4], 3, None, ([2, 3, 4], True)),  # a tokenizer without BOS
    ],
)
def test_keep_last_cuts_from_the_left_and_keeps_only_a_real_bos(ids, limit, bos, expected):
    assert keep_last(ids, limit, bos) == expected


class _Tokens:
    """Word ids, BOS 1 and EOS 2, like a tokenizer called with add_special_tokens=False."""

    bos_token_id, eos_token_id = 1, 2

    def __call__(self, texts=None, add_special_tokens=True, text_target=None):
        texts = text_target if text_target is not None else texts
        ids = [[10 + len(word) for word in text.split()] for text in texts]
        return {"input_ids": [row + [2] for row in ids] if text_target is not None else ids}


@pytest.mark.parametrize("encoder_decoder", [False, True])
def test_pairs_mask_the_prompt_and_cut_it_from_the_left_keeping_bos(encoder_decoder):
    encoder = Encoder(_Tokens(), chat=False, encoder_decoder=encoder_decoder, context=6, max_target=3)
    prompt = [1, 11, 12, 13, 14, 15]  # BOS + 5 words
    rows, counts = encoder.pairs([prompt], ["ab abc"])
    target = [12, 13, 2]
    row = rows[0]
    assert row["attention_mask"] == [1] * len(row["input_ids"])
    if encoder_decoder:  # the encoder sees the whole context; the decoder learns the target
        assert row["input_ids"] == prompt and row["labels"] == target
        assert counts["truncated_prompts"] == 0
    else:  # prompt and target share the context: 6 - 3 tokens of prompt, BOS kept in front
        assert row["input_ids"] == [1, 14, 15, *target]
        assert row["labels"] == [IGNORE] * 3 + target
        assert counts["truncated_prompts"] == 1


def _mr_to_ref(model, tmp_path):
    """A generation config from `mr` to `ref`, and an encoder with 8 positions, 4 of them for the target."""
    config = build_config(
        {
            "name": "g",
            "task": "generation",
            "model": str(model),
            "data": {"dataset": "x.csv", "prompt_template": "{mr}", "target_column": "ref"},
            "methods": [{"method": "full"}],
            "output_dir": str(tmp_path),
        }
    )
    return config, Encoder(_Tokens(), chat=False, encoder_decoder=False, context=8, max_target=4)


def test_reference_groups_keep_every_reference_of_a_prompt_in_order(tiny_llama_lm, tmp_path):
    from peftbench.tasks.generation import Generation

    config, encoder = _mr_to_ref(tiny_llama_lm, tmp_path)
    groups = Generation._reference_groups(
        ["p1", "p2", "p1"], [[1, 11], [1, 12], [1, 11]], ["a", "b", "c"], encoder, 8, config
    )
    assert groups == [
        {"prompt": "p1", "prompt_ids": [1, 11], "references": ["a", "c"], "cut": False, "dropped": False},
        {"prompt": "p2", "prompt_ids": [1, 12], "references": ["b"], "cut": False, "dropped": False},
    ]


def test_eight_reference_rows_of_a_prompt_score_as_one_nist_and_cider_segment(tiny_llama_lm, tmp_path):
    from nltk.translate.nist_score import corpus_nist

    from peftbench.metrics.text_metrics import e2e_tokens, text_metrics
    from peftbench.tasks.generation import Generation

    config, encoder = _mr_to_ref(tiny_llama_lm, tmp_path)
    first = [f"The pub {w} is near the {v} river." for w, v in zip(WORDS[:8], WORDS[4:12], strict=True)]
    others = {"p2": ["A cheap cafe.", "The cafe is cheap."], "p3": ["The river pub is near the cafe."]}
    rows = [("p1", r) for r in first[:5]] + [("p2", r) for r in others["p2"]] + [("p1", r) for r in first[5:]]
    rows += [("p3", r) for r in others["p3"]]
    prompts, targets = [p for p, _ in rows], [t for _, t in rows]
    groups = Generation._reference_groups(prompts, [[1, 11]] * len(rows), targets, encoder, 8, config)
    assert [len(g["references"]) for g in groups] == [8, 2, 1]
    predictions = ["The pub is near the river.", "A cheap cafe.", "The pub near the cafe."]
    metrics, _ = text_metrics(predictions, [g["references"] for g in groups])
    grouped = [first, others["p2"], others["p3"]]  # the references written out per prompt
    nltk_nist = corpus_nist(
        [[e2e_tokens(r) for r in refs] for refs in grouped], [e2e_tokens(p) for p in predictions]
    )
    assert metrics["nist"] == pytest.approx(nltk_nist, rel=1e-12)
    assert metrics["cider"] == pytest.approx(text_metrics(predictions, grouped)[0]["cider"], rel=1e-12)
