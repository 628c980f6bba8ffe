"""ONNX export (the input format of PopART): one flat ONNX graph with the program's semantics.

Conventions (also written into the model's doc_string):
  - inputs: every variable under its name (current value), then every host-to-device stream;
  - outputs: `<name>__updated` for every variable the program writes (the caller writes them back), then
    every device-to-host stream;
  - called graphs are inlined; elementwise ops become their primitive expressions, node for node, in each
    node's own dtype (float16 arithmetic stays float16, as the reference computes it).
"""
from .export import export, to_model

__all__ = ["export", "to_model"]
