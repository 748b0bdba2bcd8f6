"""peftbench: compare fine-tuning methods on the same task, measured honestly."""

__version__ = "0.1.0"
RESULT_SCHEMA_VERSION = 1
