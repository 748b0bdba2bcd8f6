"""Train/validation/test from a loaded dataset: take the named splits, carve missing ones out of train,
shrink to data_fraction and the caps, and count inputs that train and test share.

Rows with the same group key (a task's input: a text, a rendered prompt) always land on one side of a
carve and are kept or dropped together. Every random choice uses data.split_seed, never the training
seed, so every seed, method and data fraction of an experiment is tested on the same examples."""

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from math import ceil

import numpy as np
from datasets import Dataset, DatasetDict
from sklearn.model_selection import train_test_split

from peftbench.config.config import DataConfig
from peftbench.errors import PeftbenchError

TEST_FRACTION = 0.2  # carved from train when the data has no test split
SHARE_TOLERANCE = 0.05  # relative gap between the rows kept and asked for that is warned about
GROUP = "__group__"
ROW = "__row__"  # a row's id: its source split and index there, e.g. "train:17"
log = logging.getLogger("peftbench")
GroupKey = Callable[[Dataset], list[str]]  # rows -> one key per row; equal keys share an input


@dataclass
class Splits:
    rows: DatasetDict  # train, validation, test
    info: dict  # how they were made; recorded in result.json under "data"


def split_names(raw: DatasetDict, config: DataConfig) -> dict[str, str | None]:
    """The split of `raw` behind each role, None where it must be carved from train."""
    has = list(raw)
    if config.train_split not in raw:
        raise PeftbenchError(
            f"data.train_split '{config.train_split}' is not a split of the dataset (it has {has}); "
            "name one of those"
        )
    test = config.test_split
    if test is not None and test not in raw:
        if test != "test":  # only the default falls back to carving
            raise PeftbenchError(
                f"data.test_split '{test}' is not a split of the dataset (it has {has}); name one of "
                "those, or set data.test_split: null to carve a test split from train"
            )
        test = None
    validation = config.validation_split
    if validation is not None and validation not in raw:
        raise PeftbenchError(
            f"data.validation_split '{validation}' is not a split of the dataset (it has {has}); name "
            "one of those, or leave it unset to carve a validation split from train"
        )
    if validation is None and "validation" in raw and test != "validation":
        validation = "validation"
    for role, name in (("test", test), ("validation", validation)):
        if name == config.train_split:
            raise PeftbenchError(f"data.{role}_split '{name}' is the training split; name another split")
    if validation is not None and validation == test:
        raise PeftbenchError(
            f"data.validation_split '{validation}' is also the test split: model selection would see the "
            "test set; leave data.validation_split unset to carve validation from train"
        )
    return {"train": config.train_split, "validation": validation, "test": test}


def _check_filled(splits: dict[str, Dataset], column: str) -> None:
    for split, rows in splits.items():
        for i, value in enumerate(rows[column]):
            if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
                raise PeftbenchError(
                    f"row {i + 1} of the {split} split has an empty '{column}' cell; "
                    "fill it in or drop the row"
                )


def _group_labels(keys: list[str], labels: list) -> dict[str, str]:
    """Each group's most frequent label: what stratified carving balances."""
    counts: dict[str, Counter] = {}
    for key, label in zip(keys, labels, strict=True):
        counts.setdefault(key, Counter())[str(label)] += 1
    return {key: count.most_common(1)[0][0] for key, count in counts.items()}


def _fewest_groups(fraction: float, classes: int) -> int:
    """Smallest group count sklearn's train_test_split can cut at `fraction` with a member of every
    class on both sides (it rounds the held-out count up)."""
    count = 2
    while ceil(fraction * count) < classes or count - ceil(fraction * count) < classes:
        count += 1
    return count


def _check_carvable(role: str, rows: int, groups: int, strata: list[str] | None, fraction: float) -> None:
    classes = len(set(strata)) if strata is not None else 1
    needed = _fewest_groups(fraction, classes)
    fix = f"add rows, or give a {role} split (data.{role}_file or data.{role}_split)"
    if groups < needed:
        per = f" with {classes} classes" if classes > 1 else ""
        raise PeftbenchError(
            f"too few rows to carve a {role} split ({fraction:.0%} of train): train has {rows} rows, "
            f"{groups} distinct inputs; it needs at least {needed} distinct inputs{per}; {fix}"
        )
    rare = sorted(label for label, count in Counter(strata or []).items() if count < 2)
    if rare:
        raise PeftbenchError(
            f"class(es) {rare[:5]} have a single distinct input in train; carving a {role} split "
            f"stratified by class needs at least 2 of each; {fix}"
        )


def carve(
    train: Dataset, fraction: float, role: str, seed: int, stratify_by: str | None
) -> tuple[Dataset, Dataset]:
    """(rest of train, carved split), whole groups to one side, stratified by the group's label.

    sklearn's StratifiedGroupKFold does this too but took 51 s for SST-2's 67k groups (measured), so
    whole groups are split by train_test_split, stratified by each group's label."""
    keys = train[GROUP]
    groups = list(dict.fromkeys(keys))
    strata = None
    if stratify_by:
        labels = _group_labels(keys, train[stratify_by])
        strata = [labels[g] for g in groups]
    _check_carvable(role, len(train), len(groups), strata, fraction)
    _, held = train_test_split(groups, test_size=fraction, stratify=strata, random_state=seed)
    held = set(held)
    inside = [i for i, key in enumerate(keys) if key in held]
    outside = [i for i, key in enumerate(keys) if key not in held]
    return train.select(outside), train.select(inside)


def asked_rows(available: int, fraction: float, limit: int | None) -> int:
    """The rows `fraction` and the cap `limit` ask for out of `available`."""
    count = int(round(available * fraction))
    return count if limit is None else min(count, limit)


def _fill(order: list[str], sizes: Counter, count: int) -> set[str]:
    """Whole groups, in `order`, up to `count` rows: a group that does not fit in what is left is skipped
    and the next are tried. With none fitting, the smallest group (so a split is never emptied by a cap)."""
    chosen, total = set(), 0
    for group in order:
        if total + sizes[group] <= count:
            chosen.add(group)
            total += sizes[group]
            if total == count:
                break
    return chosen or {min(order, key=sizes.__getitem__)}


def shrink(rows: Dataset, fraction: float, limit: int | None, seed: int) -> Dataset:
    """About `fraction` of the rows, at most `limit`, as whole groups in a seeded order.

    Groups that do not fit are skipped rather than ending the fill, so one big group of a repeated input
    (WikiText's empty lines, a boilerplate review) cannot leave a split far below its share. The order
    depends only on the seed and the groups: a smaller fraction keeps every group a larger one keeps up
    to the first group it skips; the groups after it that fill its share may differ."""
    count = asked_rows(len(rows), fraction, limit)
    if count >= len(rows):
        return rows
    if count == 0:
        return rows.select([])
    keys = rows[GROUP]
    sizes = Counter(keys)
    groups = list(sizes)
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    chosen = _fill(order, sizes, count)
    return rows.select([i for i, key in enumerate(keys) if key in chosen])


def share(kept: int, available: int, asked: int) -> dict:
    """What a split kept against what its fraction and cap asked for, as rows and as shares of `available`."""
    return {
        "available": available,
        "asked_rows": asked,
        "kept_rows": kept,
        "asked": asked / available if available else 1.0,
        "kept": kept / available if available else 1.0,
    }


def share_warning(role: str, kept: dict) -> str | None:
    """One line when a split kept more than SHARE_TOLERANCE (relative) off the rows it was asked for."""
    asked = kept["asked_rows"]
    if not asked or abs(kept["kept_rows"] - asked) <= SHARE_TOLERANCE * asked:
        return None
    return (
        f"{role} split kept {kept['kept_rows']} of {kept['available']} rows ({kept['kept']:.1%}) where "
        f"data_fraction and the caps asked for {asked} ({kept['asked']:.1%}): its inputs come in groups of "
        "repeated rows too large to fit; deduplicate the data or change the fraction"
    )


def shared_inputs(rows: Dataset, reference: Dataset) -> int:
    """Rows of `rows` whose (non-empty) input also occurs in `reference`: exact duplicates."""
    seen = set(reference[GROUP])
    return sum(key in seen for key in rows[GROUP] if key.strip())


def _check_validation_is_not_test(validation: Dataset, test: Dataset, carved: bool) -> None:
    if not len(validation) or shared_inputs(validation, test) < len(validation):
        return
    if carved:
        raise PeftbenchError(
            "every input of the validation split carved from train also occurs in the test split: train "
            "repeats the test set, so selection would see it; remove the test rows from the training data"
        )
    raise PeftbenchError(
        "every validation input also occurs in the test split: model selection would see the test set; "
        "use another validation split or file, or leave data.validation_split unset to carve it from train"
    )


def validation_cap(config: DataConfig) -> int | None:
    """data.max_eval_samples, or, when only training is capped, validation in the carved proportion to
    the capped training set (max_train_samples 3000 at validation_fraction 0.1: 334 rows), so a large
    dataset is not validated on thousands of rows every epoch of a small run."""
    if config.max_eval_samples is not None or config.max_train_samples is None:
        return config.max_eval_samples
    fraction = config.validation_fraction
    return ceil(config.max_train_samples * fraction / (1 - fraction))


def with_row_ids(raw: DatasetDict) -> DatasetDict:
    """Every row tagged with its id (split and index), unless already tagged (e.g. before keep_rows)."""
    return DatasetDict(
        {
            name: rows
            if ROW in rows.column_names
            else rows.add_column(ROW, [f"{name}:{i}" for i in range(len(rows))])
            for name, rows in raw.items()
        }
    )


def ids_hash(rows: Dataset) -> str:
    """sha256 of the rows' ids, in id order: the same examples give the same hash, whatever their order."""
    ids = sorted(rows[ROW], key=lambda i: (i.rsplit(":", 1)[0], int(i.rsplit(":", 1)[1])))
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()


def make_splits(raw: DatasetDict, config: DataConfig, group_by: GroupKey, stratify_by: str | None) -> Splits:
    """Train/validation/test from `raw`; its splits already hold the task's columns."""
    names = split_names(raw, config)
    raw = with_row_ids(DatasetDict({name: raw[name] for name in names.values() if name is not None}))
    named = {role: raw[name] for role, name in names.items() if name is not None}
    if stratify_by:
        _check_filled(named, stratify_by)
    parts = {role: rows.add_column(GROUP, [str(k) for k in group_by(rows)]) for role, rows in named.items()}
    seed, sources = config.split_seed, dict(names)
    for role, fraction in (("test", TEST_FRACTION), ("validation", config.validation_fraction)):
        if role not in parts:
            parts["train"], parts[role] = carve(parts["train"], fraction, role, seed, stratify_by)
            sources[role] = f"carved from {names['train']} ({fraction:.0%}, grouped by input)"
    _check_validation_is_not_test(parts["validation"], parts["test"], names["validation"] is None)
    shrunk = {  # role: (fraction, cap); the test split is never shrunk by data_fraction
        "train": (config.data_fraction, config.max_train_samples),
        "validation": (config.data_fraction, validation_cap(config)),
        "test": (1.0, config.max_eval_samples),
    }
    kept, shares = {}, {}
    for role, (fraction, cap) in shrunk.items():
        kept[role] = shrink(parts[role], fraction, cap, seed)
        available = len(parts[role])
        shares[role] = share(len(kept[role]), available, asked_rows(available, fraction, cap))
        warning = share_warning(role, shares[role])
        if warning:
            log.warning("%s", warning)
        if len(kept[role]) == 0:
            raise PeftbenchError(
                f"{role} split is empty after data_fraction={config.data_fraction}; "
                "raise data.data_fraction or use a larger dataset"
            )
    info = {
        "split_seed": seed,
        "data_fraction": config.data_fraction,
        "splits_from": sources,
        "stratified_by": stratify_by,
        "validation_cap": validation_cap(config),
        "shares": shares,
        "train_test_duplicates": shared_inputs(kept["test"], kept["train"]),
        "validation_test_duplicates": shared_inputs(kept["test"], kept["validation"]),
        "test_ids_sha256": ids_hash(kept["test"]),
    }
    return Splits(DatasetDict({r: rows.remove_columns([GROUP, ROW]) for r, rows in kept.items()}), info)
