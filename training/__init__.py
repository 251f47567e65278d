"""Training side: dataset loaders, the PyTorch model, training, evaluation and ONNX export (needs the `train` extra)."""
