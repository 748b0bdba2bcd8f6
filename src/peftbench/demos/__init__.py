"""The experiments `peftbench demo` runs, as YAML files read with importlib.resources; no code."""
