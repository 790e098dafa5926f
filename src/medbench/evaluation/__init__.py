"""Evaluation of any predictions file (`medbench evaluate`): the join of truth and predictions (`tables`), the
summary with bootstrap intervals at chosen thresholds (`summary`), its plots (`plots`) and the files it writes
(`evaluate`). NumPy, pandas and matplotlib only: no TensorFlow."""
