"""TIML's table-driven training: one row of a CSV per model, each trained as an ordinary medbench run.

Modules: `methods` (TIML's method names on the registry), `table` (the table's columns and cells),
`splits` (a row's train/dev/test files and the dataset over them), `statistics` (TIML's per-split
accuracy, specificity, sensitivity and AUROC), `artefacts` (its per-row files), `runner` (`train_table`)
and `arguments` (`medbench exec --table`). Nothing here imports TensorFlow until a table trains.
"""
