"""AUCMEDI's API on medbench's machinery: a user's AUCMEDI script runs after ``aucmedi`` → ``medbench.aucmedi``.

The three pillars, `input_interface`, `DataGenerator` and `NeuralNetwork`, and the module paths scripts
import from (``medbench.aucmedi.neural_network.architectures``, ``.loss_functions``, ``.utils.class_weights``,
``.data_processing.io_data``/``data_generator``) mirror AUCMEDI's. Underneath are medbench's architecture
registry, classifier head, preprocessing cache, standardization and focal losses; each module says where
it differs from AUCMEDI and why.
"""

from medbench.aucmedi.data_processing.data_generator import DataGenerator
from medbench.aucmedi.data_processing.io_data import input_interface
from medbench.aucmedi.neural_network.model import NeuralNetwork

__all__ = ["DataGenerator", "NeuralNetwork", "input_interface"]
