"""Metrics and losses that ignore masked (NaN) labels.

`classification` (exact per-class / macro / micro metrics from predictions, numpy only),
`class_weights` (from training labels), `losses` (masked BCE, WBCE, CWBCE for Keras) and
`keras_metrics` (streaming metrics for the training progress display).
"""

from medbench.metrics.class_weights import ClassWeights, compute_class_weights
from medbench.metrics.classification import ClassMetrics, MetricsReport, auroc, evaluate_predictions

__all__ = ["ClassMetrics", "ClassWeights", "MetricsReport", "auroc", "compute_class_weights", "evaluate_predictions"]
