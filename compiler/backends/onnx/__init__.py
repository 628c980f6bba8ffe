"""ONNX export: one step of the program as a standard ONNX model (opset 11, the newest PopART's builder
accepts), checked with onnx.checker.

    lower(optimised_ir, options) -> onnx.ModelProto   (compiler/driver.py runs the passes first;
                                                       driver.export_onnx writes the file)

Naming convention of the model (also in its doc_string and, machine-readable, in its metadata_props
"optgraph.variables" / "optgraph.streams" / "optgraph.steps_per_run"):
  - inputs: every variable of the main graph under its name (made unique with a "__2" suffix if needed),
    holding the variable's current value; an initializer of the same name holds the value the program
    was built with, so the first step may leave it out. Then every host-to-device stream as
    "stream__<stream name>", one batch.
  - outputs: "<variable input>__updated" for every variable the step writes (optimiser state, weights,
    the Adam step counter): the caller writes it back into that variable before the next step. Then every
    device-to-host stream as "stream__<stream name>".
  - one model run is one execution of the main graph; a PopXL session.run() with num_host_transfers = N
    is N model runs, feeding each run the next batch and the previous run's updated variables.
Semantics: called graphs are inlined; elementwise ops and fused kernels are their primitive
expressions, node for node, each node rounded to its own dtype (float16 nodes compute in float32 between
explicit Casts, exactly as the reference does); float16 matmul, reductions and softmax accumulate in
float32. bfloat16 cannot be expressed in opset 11 and is refused.
"""
from .export import OPSET, lower, to_model

__all__ = ["lower", "to_model", "OPSET"]
