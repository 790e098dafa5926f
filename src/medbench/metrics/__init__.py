"""Metrics that ignore masked (NaN) labels.

`classification` (exact per-class / macro / micro metrics from predictions, NumPy only),
`multiclass` (one class per image: accuracy, balanced accuracy, confusion matrix, one-vs-rest AUROC),
`thresholds` (operating points chosen on validation) and `keras_metrics` (streaming metrics for the
training progress display; imports Keras).
"""

from medbench.metrics.classification import ClassMetrics, MetricsReport, auroc, evaluate_predictions
from medbench.metrics.multiclass import MulticlassReport, evaluate_multiclass

__all__ = ["ClassMetrics", "MetricsReport", "MulticlassReport", "auroc", "evaluate_multiclass", "evaluate_predictions"]
