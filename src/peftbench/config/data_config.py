"""The data section of an experiment config: where the rows come from, which are kept, and how they are
split and cut. config.py assembles it with the other sections."""

from pydantic import Field

from peftbench.config.schema import Strict


class DataConfig(Strict):
    dataset: str = Field(
        description="Built-in name (drugscom), hub id, or a local csv/tsv/json/jsonl/parquet"
    )
    config_name: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    train_split: str = "train"
    validation_split: str | None = Field(
        None, description="Split to validate on; unset: 'validation' unless it is the test split, else carved"
    )
    test_split: str | None = Field(
        "test", description="Split to test on; 'test' is carved from train when missing; null: always carve"
    )
    split_seed: int = Field(
        42, description="Seed of every carve and subsample: one test set for all seeds, methods, fractions"
    )
    text_column: str = Field("text", description="Text to classify (classification) or model (causal_lm)")
    text_pair_column: str | None = None
    label_column: str = "label"
    label_names: list[str] | None = None
    prompt_template: str | None = Field(
        None, description="generation: prompt with {column} fields, e.g. 'Summarize: {article}\\n'"
    )
    target_column: str | None = Field(None, description="generation: the column the model must produce")
    chat_template: bool = Field(
        False, description="generation: wrap the prompt in the tokenizer's chat template"
    )
    max_target_length: int | None = Field(None, gt=0, description="generation: target tokens kept")
    data_fraction: float = Field(
        1.0, gt=0, le=1, description="Fraction of train and validation kept, in (0, 1]; test stays whole"
    )
    max_train_samples: int | None = Field(None, gt=0)
    max_eval_samples: int | None = Field(None, gt=0)
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="Carved from train when no validation")
    max_length: int = Field(256, gt=0, description="Tokens per example (causal_lm: per packed block)")
    keep_rows: dict[str, list[str | int]] | None = Field(
        None,
        description="Keep only the rows whose column holds one of these values, in every split before any "
        "carve, e.g. {label: [negative, positive]} drops the neutral reviews",
    )
