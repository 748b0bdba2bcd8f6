"""Loading a task's data: data files and hub datasets, their faults, and the train/validation/test splits."""
