"""The build file and the README written next to the emitted program."""
from __future__ import annotations

CMAKE = """\
# Builds the program emitted by the optgraph compiler against the Poplar SDK.
# First: source <poplar_sdk>/enable.sh (it puts Poplar and PopLibs on the compiler's search paths).
cmake_minimum_required(VERSION 3.16)
project(@NAME@ CXX)

set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()

add_executable(@NAME@ @NAME@.cpp)
# Large initial values live in data/ next to this file; --data DIR overrides the folder at run time.
target_compile_definitions(@NAME@ PRIVATE OPTGRAPH_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data")
target_link_libraries(@NAME@ PRIVATE poplar popops poplin popnn poputil)
"""

README = """\
# @NAME@: a Poplar program emitted by the optgraph compiler

`@NAME@.cpp` builds the same program as the IR it was emitted from, with the public Poplar and PopLibs
APIs: one `poplar::Graph`, variables spread over the tiles (`poputil::mapTensorLinearly`) and initialised
from the IR's data, elementwise ops and fused kernels as `popops::map` / `mapInPlace` / `mapWithOutput`
with one `popops::expr` tree per result, `poplin::matMul`, `popops::reduce`, host streams as
`poplar::DataStream` FIFOs, each called IR graph as a reusable `poplar::Function` (`program::Call`), the
schedule as a `program::Sequence`, and an `Engine` run loop.

## Build (needs the Poplar SDK)

    source <poplar_sdk>/enable.sh
    cmake -S . -B build && cmake --build build -j

or without CMake: `g++ -std=c++17 -O2 @NAME@.cpp -o @NAME@ -lpoplar -lpopops -lpoplin -lpopnn -lpoputil`.

## Run

    ./build/@NAME@                     # one step on one IPU (attaches to the first free one)
    ./build/@NAME@ --ipu-model         # the IPU Model simulator instead of hardware
    ./build/@NAME@ --iterations 100 --inputs in/ --outputs out/

Each iteration is one `engine.run(0)`, which executes the step `steps_per_run` times (the IR's
num_host_transfers, as one PopXL `session.run()`; usually 1). Host-to-device streams read
`in/<stream>.bin`: raw little-endian values, `iterations x steps_per_run x shape` of the stream's dtype
(see manifest.json; write them with `numpy.asarray(x, dtype).tofile(path)`, float16 as IEEE half); a
missing file sends zeros. Device-to-host streams are printed per step and written to `out/<stream>.bin`;
at the end every variable is read back, printed and written to `out/<host_name>.bin` in the same format.

## What was checked without an IPU

The optgraph test suite compiles this source with `g++ -std=c++17 -fsyntax-only` against declarations
transcribed from the public Poplar / PopLibs headers (an API-surface check, not an IPU run), and evaluates
every emitted `popops::expr` tree with a small evaluator against the compiler's reference interpreter.
"""
