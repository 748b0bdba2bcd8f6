"""Cost before and after training: estimates from the config, batch-size probes, inference benchmarks."""
