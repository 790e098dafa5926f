"""Training an experiment: the schedule (pure, from history), callbacks, the model, strategies, evaluation.

Modules: `schedule` (plateau decays, early stopping and the best epoch, derived from `history.json`
alone so a resumed run decides as an uninterrupted one; no TensorFlow), `callbacks` (the epoch-end
checkpoint/history callback and the progress bar), `model` (building, compiling and saving the
model), `distribution` (tf.distribute strategies and the dtype policy) and `evaluation` (predicting
a split in its fixed order and scoring it).
"""
