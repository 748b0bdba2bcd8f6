"""What a run leaves on disk and how it is read back: status markers and atomic JSON, the run folder and
its current selection, checkpoints (exact resume inside a run), progress.json, train.log, and the terminal
tables that print them."""
