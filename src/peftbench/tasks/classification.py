"""Sequence classification: a fresh head on a pretrained body, scored with scikit-learn metrics."""

import json
import time
from collections import Counter

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict
from peft import TaskType
from torch import nn
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from peftbench.config.config import DataConfig, ExperimentConfig
from peftbench.data.data import load_splits
from peftbench.errors import PeftbenchError
from peftbench.metrics.metrics import classification_metrics, per_class_report
from peftbench.models import models
from peftbench.tasks.base import TASKS, Evaluation, Task, TaskData
from peftbench.training.training import TrainerParts, predict

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "label")


def label_names(train: Dataset, config: DataConfig) -> list[str]:
    if config.label_names:
        return list(config.label_names)
    feature = train.features[config.label_column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    return [str(v) for v in sorted(set(train[config.label_column]))]


def _label_index(value, lookup: dict[str, int], count: int, by_index: bool) -> int | None:
    if by_index and isinstance(value, int) and not isinstance(value, bool) and str(value) not in lookup:
        return value if 0 <= value < count else None
    return lookup.get(str(value))


def encode_labels(dataset: Dataset, config: DataConfig, names: list[str], split: str) -> Dataset:
    """Columns text[, text_pair], label (int index into `names`)."""
    lookup = {name: i for i, name in enumerate(names)}
    by_index = bool(config.label_names) or isinstance(dataset.features[config.label_column], ClassLabel)
    ids = [_label_index(v, lookup, len(names), by_index) for v in dataset[config.label_column]]
    unknown = sorted({str(v) for v, i in zip(dataset[config.label_column], ids, strict=True) if i is None})
    if unknown and config.label_names:
        raise PeftbenchError(
            f"{split} split has labels {unknown[:5]} outside the label set {names} of data.label_names; "
            "fix the data or data.label_names"
        )
    if unknown:
        raise PeftbenchError(
            f"{split} split has labels {unknown[:5]} that the train split never has (it has {names}); "
            "add training examples of them or drop those rows"
        )
    columns = {"text": dataset[config.text_column], "label": ids}
    if config.text_pair_column:
        columns["text_pair"] = dataset[config.text_pair_column]
    return Dataset.from_dict(columns)


def _inputs(config: DataConfig):
    """The grouping key of a row: its text (and text pair), so repeated inputs stay on one side."""
    columns = [c for c in (config.text_column, config.text_pair_column) if c]

    def keys(rows: Dataset) -> list[str]:
        return ["\x1f".join(map(str, values)) for values in zip(*(rows[c] for c in columns), strict=True)]

    return keys


def _check_classes(train: Dataset, column: str) -> None:
    present = sorted({str(v) for v in train[column]})
    if len(present) < 2:
        raise PeftbenchError(
            f"the train split holds a single class {present}: there is nothing to tell apart; "
            "add examples of another class"
        )


def load_labelled(config: DataConfig) -> tuple[DatasetDict, list[str], dict]:
    """Train/validation/test with columns text[, text_pair], label (int), the label names, and how the
    splits were made (carving is stratified by label and grouped by input text)."""
    columns = [c for c in (config.text_column, config.text_pair_column, config.label_column) if c]
    hint = "set data.text_column / data.text_pair_column / data.label_column"
    loaded = load_splits(config, columns, hint, _inputs(config), stratify_by=config.label_column)
    _check_classes(loaded.rows["train"], config.label_column)
    names = label_names(loaded.rows["train"], config)
    encoded = {s: encode_labels(d, config, names, s) for s, d in loaded.rows.items()}
    return DatasetDict(encoded), names, loaded.info


def tokenize(splits: DatasetDict, tokenizer, max_length: int) -> DatasetDict:
    """Tokenise once, without padding: the collator pads each batch to its own longest example."""

    def encode(batch: dict) -> dict:
        return tokenizer(batch["text"], batch.get("text_pair"), truncation=True, max_length=max_length)

    return splits.map(encode, batched=True, desc="tokenising")


def _predictions_file(test: Dataset, names: list[str], predictions: np.ndarray, logits) -> str:
    probabilities = torch.softmax(torch.from_numpy(logits), -1).numpy() if logits is not None else None
    lines = []
    for i, (text, label) in enumerate(zip(test["text"], test["label"], strict=True)):
        row = {"index": i, "text": text, "label": names[label], "prediction": names[int(predictions[i])]}
        if probabilities is not None:
            row["probabilities"] = dict(zip(names, map(float, probabilities[i].round(5)), strict=True))
        lines.append(json.dumps(row))
    return "\n".join(lines) + "\n"


def score(
    data: TaskData, predictions: np.ndarray, logits: np.ndarray | None, loss: float | None
) -> Evaluation:
    test, names = data.splits["test"], data.metadata["label_names"]
    labels = np.asarray(test["label"])
    metrics = {**classification_metrics(labels, predictions, names), "loss": loss}
    return Evaluation(
        metrics=metrics,
        result_fields=per_class_report(labels, predictions, names),
        files={"predictions.jsonl": _predictions_file(test, names, predictions, logits)},
    )


def _has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def classification_head(model: nn.Module) -> tuple[str, ...]:
    """The head: every top-level module outside the pretrained body (BERT/RoBERTa `classifier`, DistilBERT
    `pre_classifier` + `classifier`, BART `classification_head`, Llama `score`), plus the body's pooler
    where it has one. The pooler counts as head for every method: checkpoints such as sentence-transformers'
    MiniLM never trained it, and BERT's was trained for next-sentence prediction, not this task."""
    body = model.base_model
    names = [n for n, m in model.named_children() if m is not body and _has_parameters(m)]
    pooler = getattr(body, "pooler", None)
    if body is not model and isinstance(pooler, nn.Module) and _has_parameters(pooler):
        names.append(f"{model.base_model_prefix}.pooler")
    if body is model or not names:
        raise PeftbenchError(
            f"cannot tell the classification head from the body in {type(model).__name__}; "
            "use a model class from transformers' AutoModelForSequenceClassification"
        )
    return tuple(names)


class Classification(Task):
    summary = "sequence classification with a fresh head (accuracy, macro-F1)"
    headline_metrics = ("accuracy", "f1_macro")
    # On skewed labels the majority class already scores the majority share of accuracy, so a model that
    # learned the minority classes can tie it there; macro-F1 sits at its floor for a one-class predictor.
    learning_metric = "f1_macro"
    validation_metrics = ("loss", "accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro")
    fresh_head = True
    peft_task_types = (TaskType.SEQ_CLS,)

    def load_data(self, config: ExperimentConfig, tokenizer, model_config) -> TaskData:
        splits, names, info = load_labelled(config.data)
        return TaskData(tokenize(splits, tokenizer, config.data.max_length), {"label_names": names, **info})

    def load_model(self, source, data: TaskData, tokenizer) -> nn.Module:
        return models.load_classifier(source, data.metadata["label_names"], tokenizer.pad_token_id)

    def model_from_config(self, model_config, num_labels: int = 2) -> nn.Module:
        model_config.num_labels = num_labels
        return AutoModelForSequenceClassification.from_config(model_config)

    def example_batch(self, batch_size: int, seq_len: int, device: str = "meta") -> dict:
        ids = torch.ones((batch_size, seq_len), dtype=torch.long, device=device)
        return {"input_ids": ids, "labels": torch.zeros(batch_size, dtype=torch.long, device=device)}

    def peft_task_type(self, model: nn.Module) -> TaskType:
        return TaskType.SEQ_CLS

    def head_modules(self, model: nn.Module) -> tuple[str, ...]:
        return classification_head(model)

    def trainer_parts(self, tokenizer, model: nn.Module, data: TaskData) -> TrainerParts:
        names = data.metadata["label_names"]

        def compute_metrics(prediction) -> dict:
            logits = prediction.predictions
            logits = logits[0] if isinstance(logits, tuple) else logits
            return classification_metrics(prediction.label_ids, np.argmax(logits, axis=-1), names)

        return TrainerParts(DataCollatorWithPadding(tokenizer), MODEL_INPUTS, compute_metrics)

    def evaluate(self, model: nn.Module, trainer, inputs) -> Evaluation:
        test = inputs.data.splits["test"]
        start = time.perf_counter()
        logits, loss = predict(trainer, test, MODEL_INPUTS)
        tokens_per_second = sum(len(ids) for ids in test["input_ids"]) / (time.perf_counter() - start)
        evaluation = score(inputs.data, logits.argmax(-1), logits, loss)
        evaluation.metrics["eval_tokens_per_second"] = tokens_per_second
        return evaluation

    def extra_baselines(self) -> dict:
        def majority(inputs) -> Evaluation:
            data = inputs.data
            label = Counter(data.splits["train"]["label"]).most_common(1)[0][0]
            return score(data, np.full(len(data.splits["test"]), label), None, None)

        return {"baseline-majority": ("always the most frequent training label", majority)}


TASKS.register("classification")(Classification())
