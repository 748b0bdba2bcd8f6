"""Every task type, registered in TASKS (peftbench.tasks.base) by its own module below.
A new task is one module here plus its name in this list."""

from peftbench.tasks import causal_lm, classification, generation
from peftbench.tasks.base import TASKS, Evaluation, Task, TaskData, method_context, write_files

__all__ = [
    "TASKS",
    "Evaluation",
    "Task",
    "TaskData",
    "causal_lm",
    "classification",
    "generation",
    "method_context",
    "write_files",
]
