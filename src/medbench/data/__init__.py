"""Datasets, label policy, splits, images, transformations, the tf.data pipeline and the demo data.

Modules: `datasets` (DatasetSpec, the format table, registry, load_dataset), `readers` (one
label-file reader per format), `labels` (uncertainty policy, upsampling), `splits` (patient-level
splits), `images` (decoding and verification), `transforms` (named image transformations),
`pipeline` (tf.data), `demo` (synthetic CheXpert-format data).
"""

from medbench.data.datasets import DatasetSpec, dataset_names, get_dataset, load_dataset, register_dataset
from medbench.data.labels import default_upsample_factors, encode_labels, label_counts, upsample_indices
from medbench.data.splits import split_by_patient

__all__ = [
    "DatasetSpec",
    "dataset_names",
    "default_upsample_factors",
    "encode_labels",
    "get_dataset",
    "label_counts",
    "load_dataset",
    "register_dataset",
    "split_by_patient",
    "upsample_indices",
]
