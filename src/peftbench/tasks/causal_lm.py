"""Raw-text language modelling (WikiText-style): texts packed into fixed-length blocks, scored by
loss and perplexity per token. A few test blocks are continued by the model as readable samples; with
generation.max_eval_prompts set, that many are continued and scored by the text metrics too (BLEU, chrF,
TER, ROUGE, METEOR: the first half of a block is the prompt, its second half the reference)."""

import json
from itertools import chain

from datasets import Dataset, DatasetDict
from peft import TaskType

from peftbench.config.config import ExperimentConfig
from peftbench.data.data import load_splits
from peftbench.errors import PeftbenchError
from peftbench.metrics.text_metrics import text_metrics
from peftbench.tasks.base import TASKS, Evaluation, TaskData
from peftbench.tasks.decoding import generate
from peftbench.tasks.language import (
    UNIT,
    LanguageTask,
    context_length,
    is_encoder_decoder,
    pad_info,
    target_loss,
)


def pack(token_lists: list[list[int]], block: int) -> list[list[int]]:
    """Concatenate every text's tokens and cut the stream into full blocks (the remainder is dropped)."""
    stream = list(chain.from_iterable(token_lists))
    return [stream[i : i + block] for i in range(0, len(stream) - block + 1, block)]


def block_documents(token_lists: list[list[int]], block: int) -> list[int]:
    """For each block `pack` cuts, the text (its index) that holds the block's first token: the
    blocks of one long text share it, so the paired bootstrap resamples them together."""
    owners = list(chain.from_iterable([text] * len(ids) for text, ids in enumerate(token_lists)))
    return owners[: len(owners) - block + 1 : block]


def _blocks(texts: list[str], tokenizer, block: int, split: str) -> Dataset:
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    encoded = tokenizer([str(t) for t in texts if t and str(t).strip()])["input_ids"]
    texts_ids = [ids + eos for ids in encoded]
    blocks = pack(texts_ids, block)
    if not blocks:
        raise PeftbenchError(
            f"the {split} split holds fewer than {block} tokens, not one full block; "
            "lower data.max_length or use more data"
        )
    return Dataset.from_dict(
        {
            "input_ids": blocks,
            "attention_mask": [[1] * block] * len(blocks),
            "labels": blocks,
            UNIT: block_documents(texts_ids, block),
        }
    )


class CausalLM(LanguageTask):
    summary = "language modelling on raw text packed into blocks (loss, perplexity)"
    peft_task_types = (TaskType.CAUSAL_LM,)  # decoder-only models (validate refuses T5/BART)
    headline_metrics = ("perplexity", "loss")

    def load_data(self, config: ExperimentConfig, tokenizer, model_config) -> TaskData:
        if is_encoder_decoder(model_config):
            raise PeftbenchError(
                f"task 'causal_lm' needs a decoder-only model, but '{config.model.name}' is "
                "encoder-decoder; use task: generation for T5/BART-style models"
            )
        block = context_length(config.data.max_length, model_config)
        column = config.data.text_column
        loaded = load_splits(config.data, [column], "set data.text_column", lambda rows: rows[column])
        splits = loaded.rows
        packed = DatasetDict({s: _blocks(rows[column], tokenizer, block, s) for s, rows in splits.items()})
        info = {
            "text_column": column,
            "block_size": block,
            "blocks": {s: len(d) for s, d in packed.items()},
            "encoder_decoder": False,
            **loaded.info,
            **pad_info(tokenizer),
        }
        return TaskData(packed, info)

    def evaluate(self, model, trainer, inputs) -> Evaluation:
        config, data = inputs.config, inputs.data
        metrics, loss_file = target_loss(trainer, data.splits["test"], config.training.precision, False)
        scored = config.generation.max_eval_prompts or 0
        count = min(max(config.generation.num_samples, scored), len(data.splits["test"]))
        blocks = data.splits["test"].select(range(count))["input_ids"]
        half = data.metadata["block_size"] // 2
        generated = generate(
            trainer.model,
            inputs.tokenizer,
            [ids[:half] for ids in blocks],
            config.generation.model_copy(
                update={"max_new_tokens": min(config.generation.max_new_tokens, half)}
            ),
            config.training.precision,
            False,
            config.seed,
        )
        decode = inputs.tokenizer.decode
        samples = [
            {"prompt": decode(ids[:half]), "references": [decode(ids[half:])], "generated": text}
            for ids, text in zip(blocks, generated.texts, strict=True)
        ]
        extra = {"samples": samples[: config.generation.num_samples]}
        if scored:
            texts, references = generated.texts[:scored], [s["references"] for s in samples[:scored]]
            scores, extra["metric_notes"] = text_metrics(texts, references)
            metrics.update(scores, continuations_scored=len(texts))
        return Evaluation(
            metrics=metrics,
            result_fields=extra,
            files={"generations.jsonl": "".join(json.dumps(s) + "\n" for s in samples), **loss_file},
        )


TASKS.register("causal_lm")(CausalLM())
