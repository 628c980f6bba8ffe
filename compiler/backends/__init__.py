"""Backends: the numpy reference interpreter, LLVM (native CPU), Poplar C++ and ONNX emitters."""
