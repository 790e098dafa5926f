"""The input pipeline (TensorFlow starts here): cached uint8 rows → augmented, standardized batches.

Modules: `config` (PipelineConfig), `dataset` (training and evaluation tf.data datasets),
`augmentation` (affine and colour augmentation of batches) and `standardize` (the backbones'
intensity standardizations).
"""
