"""Datasets before any pixel is touched: label-file readers, label policy, splits and image decoding (no TF).

Modules: `readers` (one reader per label-file format), `datasets` (DatasetSpec, the registry and the
table of formats), `label_policy` (uncertainty encodings and presets, blanks, upsampling), `splits`
(seeded patient-level splits) and `images` (decoding and verification of image files).
"""
