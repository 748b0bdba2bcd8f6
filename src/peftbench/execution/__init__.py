"""A grid of runs: every run in its own process, forked from a warm server or as a Ray task, the live
display, the wall-time split, and the embedded demos."""
