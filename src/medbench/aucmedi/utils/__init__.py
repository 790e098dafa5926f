"""AUCMEDI's utilities: `class_weights`."""
