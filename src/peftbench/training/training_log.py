"""The Trainer's log_history as the rows a report plots: one per logging step and one per evaluation."""

from peftbench.training.training import eval_metrics


def logged_steps(log_history: list[dict]) -> list[dict]:
    """{step, epoch, train_loss} for every logged training step, {step, epoch, validation_*} for every
    evaluation; the Trainer's end-of-training summary (train_runtime, mean train_loss) is left out."""
    rows = []
    for entry in log_history:
        where = {"step": entry.get("step"), "epoch": entry.get("epoch")}
        if "loss" in entry:
            rows.append({**where, "train_loss": entry["loss"]})
        if "eval_loss" in entry:
            rows.append({**where, **{f"validation_{k}": v for k, v in eval_metrics(entry).items()}})
    return rows
