"""Prompt -> target generation (data-to-text, summarisation, instructions).

Training puts loss on target tokens only. Evaluation generates once per distinct test prompt and
scores against every reference that prompt has (E2E-style multi-reference)."""

import json
import statistics
from collections import Counter
from dataclasses import dataclass
from string import Formatter

from datasets import Dataset, DatasetDict
from peft import TaskType

from peftbench.config.config import ExperimentConfig
from peftbench.data.data import load_splits
from peftbench.errors import PeftbenchError
from peftbench.metrics.text_metrics import text_metrics
from peftbench.tasks.base import TASKS, Evaluation, TaskData
from peftbench.tasks.decoding import generate
from peftbench.tasks.language import (
    IGNORE,
    UNIT,
    LanguageTask,
    check_target_room,
    context_length,
    emptied,
    is_encoder_decoder,
    log,
    pad_info,
    position_limit,
    target_loss,
)


def template_fields(template: str) -> list[str]:
    """The column names a prompt template uses, e.g. 'Summarize: {article}' -> ['article']."""
    try:
        fields = [name for _, name, _, _ in Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise PeftbenchError(
            f"data.prompt_template is not a valid template ({exc}); write fields as {{column}} "
            "and literal braces as {{ and }}"
        ) from None
    bad = [name for name in fields if not name.isidentifier()]
    if bad:
        raise PeftbenchError(
            f"data.prompt_template field {{{bad[0]}}} is not a column name; name a column, e.g. {{text}}"
        )
    return list(dict.fromkeys(fields))


def render(template: str, fields: list[str], row: dict) -> str:
    return template.format_map({f: "" if row[f] is None else str(row[f]) for f in fields})


def keep_last(ids: list[int], limit: int, bos_id: int | None) -> tuple[list[int], bool]:
    """Truncate from the left to `limit` tokens, keeping a leading BOS; says whether it cut."""
    if len(ids) <= limit:
        return ids, False
    head = ids[:1] if bos_id is not None and ids[:1] == [bos_id] else []
    return head + ids[len(ids) - (limit - len(head)) :], True


@dataclass
class Encoder:
    """Turns rendered prompts and targets into model inputs, counting every truncation."""

    tokenizer: object
    chat: bool
    encoder_decoder: bool
    context: int
    max_target: int

    def prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        if self.chat:
            prompts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
        return self.tokenizer(prompts, add_special_tokens=not self.chat)["input_ids"]

    def target_ids(self, targets: list[str]) -> tuple[list[list[int]], int]:
        """Target tokens ending with EOS, at most max_target of them; a target is cut when its text
        tokens and the EOS do not all fit, and a cut target still ends with EOS (so the model learns
        to stop)."""
        eos = self.tokenizer.eos_token_id
        if self.encoder_decoder:  # the tokenizer appends EOS itself: take it off, put it back after cutting
            encoded = self.tokenizer(text_target=targets)["input_ids"]
            texts = [ids[:-1] if ids[-1:] == [eos] else ids for ids in encoded]
        else:
            texts = self.tokenizer(targets, add_special_tokens=False)["input_ids"]
        room = self.max_target - 1
        cut = sum(len(ids) > room for ids in texts)
        return [ids[:room] + [eos] for ids in texts], cut

    def pairs(self, prompts_ids: list[list[int]], targets: list[str]) -> tuple[Dataset, Counter]:
        counts: Counter = Counter()
        targets_ids, counts["truncated_targets"] = self.target_ids(targets)
        rows = {"input_ids": [], "attention_mask": [], "labels": []}
        for prompt, target in zip(prompts_ids, targets_ids, strict=True):
            limit = self.context if self.encoder_decoder else self.context - len(target)
            prompt, cut = keep_last(prompt, limit, self.tokenizer.bos_token_id)
            counts["truncated_prompts"] += cut
            counts["dropped_prompts"] += emptied(prompt, cut, self.tokenizer.bos_token_id)
            ids = prompt if self.encoder_decoder else prompt + target
            rows["input_ids"].append(ids)
            rows["attention_mask"].append([1] * len(ids))
            rows["labels"].append(target if self.encoder_decoder else [IGNORE] * len(prompt) + target)
        return Dataset.from_dict(rows), counts


def _without_empty_targets(dataset: Dataset, column: str, split: str) -> tuple[Dataset, int]:
    kept = dataset.filter(lambda row: bool(str(row[column] or "").strip()), desc="dropping empty targets")
    if len(kept) == 0:
        raise PeftbenchError(f"every target in the {split} split is empty; check data.target_column")
    return kept, len(dataset) - len(kept)


def _prompts(template: str, fields: list[str]):
    """The grouping key of a row: its rendered prompt, so all references of an input stay together."""

    def keys(rows: Dataset) -> list[str]:
        return [render(template, fields, row) for row in rows]

    return keys


def prompt_units(prompts: list[str]) -> list[int]:
    """Each row's prompt as a number: distinct rendered prompts in order of first appearance, the
    grouping (and numbering) of the reference groups that BLEU scores and generations.jsonl lists."""
    order: dict[str, int] = {}
    return [order.setdefault(prompt, len(order)) for prompt in prompts]


DROPPED = (
    "prompts kept none of their tokens: the target (in generation: max_new_tokens) took the whole context; "
    "lower data.max_target_length or generation.max_new_tokens, or raise data.max_length"
)


def _warn(counts: dict[str, dict[str, int]]) -> None:
    for what, per_split in counts.items():
        for split, count in per_split.items():
            if count:
                words = DROPPED if what == "dropped_prompts" else what.replace("_", " ")
                log.warning("%s split: %d %s", split, count, words)


class Generation(LanguageTask):
    summary = "prompt -> target generation: BLEU, NIST, METEOR, ROUGE, CIDEr, chrF, TER and perplexity"
    peft_task_types = (TaskType.CAUSAL_LM, TaskType.SEQ_2_SEQ_LM)  # decoder-only or encoder-decoder
    headline_metrics = ("bleu", "rougeL", "perplexity")
    # BLEU of a small model sits near zero before and after; the loss on the reference texts is what
    # training moves, and it has a paired test over the same test examples.
    learning_metric = "perplexity"

    def validate(self, config: ExperimentConfig) -> None:
        if not config.data.prompt_template or not config.data.target_column:
            raise PeftbenchError(
                "task 'generation' needs data.prompt_template (e.g. 'Summarize: {article}\\n') "
                "and data.target_column (e.g. summary)"
            )
        template_fields(config.data.prompt_template)
        data = config.data
        if data.max_target_length is not None and not 2 <= data.max_target_length < data.max_length:
            raise PeftbenchError(
                f"data.max_target_length={data.max_target_length} must be at least 2 (a token plus EOS) and "
                f"below data.max_length={data.max_length} to leave room for the prompt; change either"
            )

    def load_data(self, config: ExperimentConfig, tokenizer, model_config) -> TaskData:
        data = config.data
        fields = template_fields(data.prompt_template)
        hint = "fix data.prompt_template or data.target_column"
        loaded = load_splits(
            data, [*fields, data.target_column], hint, _prompts(data.prompt_template, fields)
        )
        splits = loaded.rows
        encoder_decoder = is_encoder_decoder(model_config)
        context = context_length(data.max_length, model_config)
        room = context if encoder_decoder else context - config.generation.max_new_tokens
        if room < 1:
            raise PeftbenchError(
                f"generation.max_new_tokens={config.generation.max_new_tokens} leaves no room for the "
                f"prompt in {context} tokens; raise data.max_length or lower generation.max_new_tokens"
            )
        if data.chat_template and not getattr(tokenizer, "chat_template", None):
            raise PeftbenchError(
                "data.chat_template is true but the tokenizer has no chat template; set it false"
            )
        max_target = data.max_target_length or context // 2
        check_target_room(max_target, data.max_length, model_config)
        encoder = Encoder(tokenizer, data.chat_template, encoder_decoder, context, max_target)
        counts: dict[str, dict[str, int]] = {"dropped_empty_targets": {}}
        encoded = {}
        for split, rows in splits.items():
            rows, counts["dropped_empty_targets"][split] = _without_empty_targets(
                rows, data.target_column, split
            )
            prompts = [render(data.prompt_template, fields, row) for row in rows]
            targets = [str(t).strip() for t in rows[data.target_column]]
            prompts_ids = encoder.prompt_ids(prompts)  # tokenised once, for training pairs and generation
            encoded[split], split_counts = encoder.pairs(prompts_ids, targets)
            for name, count in split_counts.items():
                counts.setdefault(name, {})[split] = count
            if split == "test":
                encoded[split] = encoded[split].add_column(UNIT, prompt_units(prompts))
                groups = self._reference_groups(prompts, prompts_ids, targets, encoder, room, config)
                for flag, name in (("cut", "truncated_prompts"), ("dropped", "dropped_prompts")):
                    counts[name]["generation"] = sum(g.pop(flag) for g in groups)
        _warn(counts)
        info = {
            "prompt_template": data.prompt_template,
            "target_column": data.target_column,
            "chat_template": data.chat_template,
            "encoder_decoder": encoder_decoder,
            "context_length": context,
            "position_limit": position_limit(model_config),
            "max_target_length": encoder.max_target,
            "evaluation_prompts": len(groups),
            "references_per_prompt": statistics.fmean(len(g["references"]) for g in groups),
            **counts,
            **loaded.info,
            **pad_info(tokenizer),
        }
        return TaskData(splits=DatasetDict(encoded), metadata=info, test_references=groups)

    @staticmethod
    def _reference_groups(prompts, prompts_ids, targets, encoder: Encoder, room: int, config) -> list[dict]:
        """One entry per distinct prompt with all of its references, in order of first appearance."""
        references: dict[str, list[str]] = {}
        first_ids: dict[str, list[int]] = {}
        for prompt, ids, target in zip(prompts, prompts_ids, targets, strict=True):
            references.setdefault(prompt, []).append(target)
            first_ids.setdefault(prompt, ids)
        distinct = list(references)[: config.generation.max_eval_prompts]
        groups, bos = [], encoder.tokenizer.bos_token_id
        for prompt in distinct:
            kept, cut = keep_last(first_ids[prompt], room, bos)
            group = {"prompt": prompt, "prompt_ids": kept, "references": references[prompt], "cut": cut}
            groups.append({**group, "dropped": emptied(kept, cut, bos)})
        return groups

    def evaluate(self, model, trainer, inputs) -> Evaluation:
        config, data = inputs.config, inputs.data
        encoder_decoder = data.metadata["encoder_decoder"]
        losses, loss_file = target_loss(
            trainer, data.splits["test"], config.training.precision, encoder_decoder
        )
        groups = data.test_references
        generated = generate(
            trainer.model,
            inputs.tokenizer,
            [g["prompt_ids"] for g in groups],
            config.generation,
            config.training.precision,
            encoder_decoder,
            config.seed,
        )
        references = [g["references"] for g in groups]
        metrics, notes = text_metrics(generated.texts, references)
        metrics.update(
            losses,
            generated_tokens_mean=statistics.fmean(generated.token_counts),
            generated_words_mean=statistics.fmean(len(t.split()) for t in generated.texts),
            reference_words_mean=statistics.fmean(len(r.split()) for refs in references for r in refs),
            empty_generations=sum(not t for t in generated.texts),
        )
        rows = [
            {"index": i, "prompt": g["prompt"], "references": g["references"], "generated": text}
            for i, (g, text) in enumerate(zip(groups, generated.texts, strict=True))
        ]
        return Evaluation(
            metrics=metrics,
            result_fields={
                "samples": rows[: config.generation.num_samples],
                "metric_notes": notes,
                "decoding": config.generation.model_dump(),
            },
            files={"generations.jsonl": "".join(json.dumps(r) + "\n" for r in rows), **loss_file},
        )


TASKS.register("generation")(Generation())
