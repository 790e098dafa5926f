"""AUCMEDI's neural network: `model.NeuralNetwork`, `architectures` and `loss_functions`."""
