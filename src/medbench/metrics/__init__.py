"""Metrics that ignore masked (NaN) labels.

`classification` (exact per-class / macro / micro metrics from predictions, NumPy only),
`thresholds` (operating points chosen on validation) and `keras_metrics` (streaming metrics for the
training progress display; imports Keras).
"""

from medbench.metrics.classification import ClassMetrics, MetricsReport, auroc, evaluate_predictions

__all__ = ["ClassMetrics", "MetricsReport", "auroc", "evaluate_predictions"]
