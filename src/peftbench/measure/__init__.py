"""Measuring a run's cost: parameter counts, sizes, peak memory, timing and the hardware it ran on."""
