"""One run from start to result.json: the runner, the baselines, the worker process entry, signal handling
and the provenance recorded with the result."""
