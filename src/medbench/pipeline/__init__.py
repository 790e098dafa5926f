"""The input pipeline (TensorFlow starts here): cached uint8 rows → shuffled, augmented uint8 batches.

Modules: `config` (PipelineConfig), `dataset` (training and evaluation tf.data datasets) and
`augmentation` (affine and colour augmentation of uint8 batches). Standardization is not here: it is
the model's first layer (`medbench.architectures.standardization`).
"""
