"""Classification quality metrics (scikit-learn). Every metric here is higher-is-better except loss."""

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

HIGHER_IS_BETTER = {
    "accuracy": True,
    "f1_macro": True,
    "f1_weighted": True,
    "precision_macro": True,
    "recall_macro": True,
    "precision_weighted": True,
    "recall_weighted": True,
    "loss": False,
}


def macro_f1(truth: np.ndarray, predictions: np.ndarray, classes: int) -> float:
    """Macro-F1 over class ids 0..classes-1, as scikit-learn's f1_score(average="macro",
    zero_division=0) with those labels, from two counts per class: a paired bootstrap calls it
    thousands of times, where f1_score's input checks cost ~50x the arithmetic."""
    hits = np.bincount(truth[truth == predictions], minlength=classes)
    sizes = np.bincount(truth, minlength=classes) + np.bincount(predictions, minlength=classes)
    return float(np.mean(np.divide(2 * hits, sizes, out=np.zeros(classes), where=sizes > 0)))


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict:
    ids = list(range(len(label_names)))
    result = {"accuracy": float(accuracy_score(labels, predictions))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predictions, labels=ids, average=average, zero_division=0
        )
        result.update(
            {
                f"precision_{average}": float(precision),
                f"recall_{average}": float(recall),
                f"f1_{average}": float(f1),
            }
        )
    return result


def per_class_report(labels: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict:
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=ids, average=None, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(label_names)
    }
    matrix = confusion_matrix(labels, predictions, labels=ids).tolist()
    return {
        "per_class": per_class,
        "confusion_matrix": {"labels": label_names, "rows_true_cols_pred": matrix},
    }
