"""peftbench: compare fine-tuning methods on the same task, measured honestly."""

import logging

__version__ = "0.1.0"
RESULT_SCHEMA_VERSION = 1

# On CPUs with AVX512-BF16, importing bitsandbytes (peft does) warns that it could not load an inference
# kernel from the hub. peftbench keeps 4-bit layers off that kernel (models/quantization.py), so the line
# is noise at the top of every run.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
