"""Losses for multi-label training that ignore masked labels, and the class weights they take.

Modules: `class_weights` (per-class weights from the training labels, NumPy),
`masked_crossentropy` (masked BCE, WBCE and CWBCE for Keras, named by the vocabulary's loss tokens) and
`focal` (AUCMEDI's binary, categorical and multi-label focal losses, masked the same way).
"""
