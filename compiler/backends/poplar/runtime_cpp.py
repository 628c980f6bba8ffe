"""The fixed parts of the emitted C++ program: includes, small helpers, the host-side run loop."""
from __future__ import annotations

INCLUDES = """\
#include <poplar/DeviceManager.hpp>
#include <poplar/Engine.hpp>
#include <poplar/Graph.hpp>
#include <poplar/IPUModel.hpp>
#include <poplar/Program.hpp>
#include <poplin/MatMul.hpp>
#include <poplin/codelets.hpp>
#include <popnn/NonLinearity.hpp>
#include <popnn/codelets.hpp>
#include <popops/ElementWise.hpp>
#include <popops/DynamicSlice.hpp>
#include <popops/Encoding.hpp>
#include <popops/Expr.hpp>
#include <popops/Reduce.hpp>
#include <popops/Zero.hpp>
#include <popops/codelets.hpp>
#include <poputil/Broadcast.hpp>
#include <poputil/TileMapping.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

using namespace poplar;
using namespace poplar::program;
namespace pe = popops::expr;

#ifndef OPTGRAPH_DATA_DIR
#define OPTGRAPH_DATA_DIR "data"
#endif
"""

HELPERS = r"""
namespace {

// ---------------------------------------------------------------------------------------------
// Helpers used by the generated graph-building code below.

/// A new variable spread evenly over all tiles.
Tensor addLinear(Graph &graph, const Type &type, const std::vector<std::size_t> &shape,
                 const std::string &name) {
  Tensor t = graph.addVariable(type, shape, name);
  poputil::mapTensorLinearly(graph, t);
  return t;
}

/// NumPy-style broadcast of `t` to `shape`: a view, no data is copied.
Tensor broadcastTo(Tensor t, const std::vector<std::size_t> &shape) {
  poputil::broadcastToMatch(t, shape);
  return t;
}

/// A variable spread over the tiles whose value is `values` when the program is loaded (the IR's
/// variables and constants). `T` is the host element type of `type`.
template <typename T>
Tensor initialised(Graph &graph, const Type &type, const std::vector<std::size_t> &shape,
                   const std::vector<T> &values, const std::string &name) {
  Tensor t = addLinear(graph, type, shape, name);
  graph.setInitialValue(t, ArrayRef<T>(values.data(), values.size()));
  return t;
}

/// As initialised(), for HALF tensors given as IEEE half bit patterns.
Tensor initialisedHalf(Graph &graph, const Type &type, const std::vector<std::size_t> &shape,
                       const std::vector<std::uint16_t> &bits, const std::string &name) {
  Tensor t = addLinear(graph, type, shape, name);
  graph.setInitialValueHalf(t, ArrayRef<std::uint16_t>(bits.data(), bits.size()));
  return t;
}

/// As initialised(), for BOOL tensors given one byte (0 or 1) per element.
Tensor initialisedBool(Graph &graph, const Type &type, const std::vector<std::size_t> &shape,
                       const std::vector<unsigned char> &bytes, const std::string &name) {
  Tensor t = addLinear(graph, type, shape, name);
  graph.setInitialValue(t, ArrayRef<bool>(reinterpret_cast<const bool *>(bytes.data()), bytes.size()));
  return t;
}

/// `count` elements of raw little-endian data from `dir/file` (written by the emitter).
template <typename T>
std::vector<T> loadRaw(const std::string &dir, const std::string &file, std::size_t count) {
  std::vector<T> values(count);
  std::ifstream in(dir + "/" + file, std::ios::binary);
  in.read(reinterpret_cast<char *>(values.data()), count * sizeof(T));
  if (!in) {
    std::cerr << "error: cannot read " << count * sizeof(T) << " bytes from " << dir << "/" << file
              << " (pass --data DIR with the folder the emitter wrote)\n";
    std::exit(1);
  }
  return values;
}

/// Options of matMul: accumulate partial sums in float (also for half operands).
OptionFlags matMulOptions() { return OptionFlags{{"partialsType", "float"}}; }

/// A called IR graph: a Poplar function and the tensors it communicates through. A call site copies
/// its arguments into `inputs`, runs `fn`, then copies `outputs` out and `byRef` back into the
/// arguments passed by reference (the semantics of PopART's CallOp).
struct Subgraph {
  Function fn;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  std::vector<Tensor> byRef;
};

/// A tensor the host reads back after the run (the main graph's variables).
struct HostTensor {
  std::string name;
  std::string dtype;
  std::size_t elements;
  std::size_t bytesPerElement;
};

/// Make `t` readable from the host as "read:<name>" and remember it for the report.
void readBack(Graph &graph, std::vector<HostTensor> &state, const Tensor &t, const std::string &name,
              const std::string &dtype, std::size_t bytesPerElement) {
  graph.createHostRead("read:" + name, t);
  state.push_back({name, dtype, t.numElements(), bytesPerElement});
}

/// One host stream: `elements` per step, `iterations` steps in one contiguous host buffer.
struct HostStream {
  std::string name;
  std::string dtype;
  std::size_t elements;
  std::size_t bytesPerElement;
  bool toDevice;
  std::vector<char> data;
};

float halfToFloat(std::uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31) return mantissa ? std::numeric_limits<float>::quiet_NaN()
                                      : sign * std::numeric_limits<float>::infinity();
  return sign * std::ldexp(static_cast<float>(mantissa + 1024), exponent - 25);
}

/// Element i of a host buffer holding `dtype` values, as a double for printing.
double element(const char *p, const std::string &dtype, std::size_t i) {
  if (dtype == "float32") { float v; std::memcpy(&v, p + 4 * i, 4); return v; }
  if (dtype == "float16") { std::uint16_t v; std::memcpy(&v, p + 2 * i, 2); return halfToFloat(v); }
  if (dtype == "int32") { std::int32_t v; std::memcpy(&v, p + 4 * i, 4); return v; }
  if (dtype == "uint32") { std::uint32_t v; std::memcpy(&v, p + 4 * i, 4); return v; }
  if (dtype == "int64") { std::int64_t v; std::memcpy(&v, p + 8 * i, 8); return static_cast<double>(v); }
  if (dtype == "int16") { std::int16_t v; std::memcpy(&v, p + 2 * i, 2); return v; }
  if (dtype == "uint16") { std::uint16_t v; std::memcpy(&v, p + 2 * i, 2); return v; }
  if (dtype == "int8") return static_cast<signed char>(p[i]);
  return static_cast<unsigned char>(p[i]);  // uint8, bool
}

void printValues(const std::string &label, const char *p, const std::string &dtype, std::size_t n) {
  std::cout << label << " [";
  for (std::size_t i = 0; i < std::min<std::size_t>(n, 8); ++i) std::cout << (i ? ", " : "") << element(p, dtype, i);
  std::cout << (n > 8 ? ", ...]" : "]") << " (" << dtype << ", " << n << " elements)\n";
}

struct RunOptions {
  bool ipuModel = false;
  unsigned iterations = 1;
  std::string dataDir = OPTGRAPH_DATA_DIR;
  std::string inputsDir;
  std::string outputsDir;
};

RunOptions parseArgs(int argc, char **argv) {
  RunOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool hasValue = i + 1 < argc;
    if (a == "--ipu-model") o.ipuModel = true;
    else if (a == "--iterations" && hasValue) o.iterations = static_cast<unsigned>(std::stoul(argv[++i]));
    else if (a == "--data" && hasValue) o.dataDir = argv[++i];
    else if (a == "--inputs" && hasValue) o.inputsDir = argv[++i];
    else if (a == "--outputs" && hasValue) o.outputsDir = argv[++i];
    else {
      std::cerr << "usage: " << argv[0] << " [--ipu-model] [--iterations N] [--data DIR] [--inputs DIR]"
                << " [--outputs DIR]\n";
      std::exit(a == "--help" || a == "-h" ? 0 : 2);
    }
  }
  return o;
}

/// One IPU of the machine, or the IPU Model (a simulator that ships with the Poplar SDK).
Device openDevice(bool ipuModel) {
  if (ipuModel) {
    IPUModel model;
    return model.createDevice();
  }
  DeviceManager manager = DeviceManager::createDeviceManager();
  std::vector<Device> devices = manager.getDevices(TargetType::IPU, 1);
  for (Device &d : devices) {
    if (d.attach()) {
      std::cout << "attached to IPU " << d.getId() << "\n";
      return std::move(d);
    }
  }
  std::cerr << "error: no IPU could be attached (is one free? try gc-info -l); --ipu-model runs the simulator\n";
  std::exit(1);
}

}  // namespace
"""

MAIN = r"""
int main(int argc, char **argv) {
  const RunOptions options = parseArgs(argc, argv);
  Device device = openDevice(options.ipuModel);
  Graph graph(device.getTarget());
  popops::addCodelets(graph);
  poplin::addCodelets(graph);
  popnn::addCodelets(graph);

  // Build the program: called graphs first (callees before callers), then the main graph.
@BUILD@
@ENGINE@
  engine.load(device);

  // Host streams: one buffer holding every iteration's data, read (or filled) in order.
  std::vector<HostStream> streams = {
@STREAMS@
  };
  for (HostStream &s : streams) {
    s.data.assign(s.elements * s.bytesPerElement * options.iterations * stepsPerRun, 0);
    if (s.toDevice) {
      const std::string path = options.inputsDir + "/" + s.name + ".bin";
      std::ifstream in(path, std::ios::binary);
      if (!options.inputsDir.empty() && in) {
        in.read(s.data.data(), static_cast<std::streamsize>(s.data.size()));
        if (!in) std::cerr << "warning: " << path << " holds fewer steps than this run needs; the rest is zero\n";
      } else {
        std::cerr << "note: no " << path << "; stream '" << s.name << "' sends zeros\n";
      }
    }
    engine.connectStream(s.name, s.data.data(), s.data.data() + s.data.size());
  }

  for (unsigned i = 0; i < options.iterations; ++i) {
    engine.run(0);
    for (unsigned j = i * stepsPerRun; j < (i + 1) * stepsPerRun; ++j) {
      for (const HostStream &s : streams) {
        if (!s.toDevice) {
          printValues("step " + std::to_string(j) + " " + s.name,
                      s.data.data() + j * s.elements * s.bytesPerElement, s.dtype, s.elements);
        }
      }
    }
  }

  // Read back the variables (the trained weights, the optimiser state).
  for (const HostTensor &v : state) {
    std::vector<char> data(v.elements * v.bytesPerElement);
    engine.readTensor("read:" + v.name, data.data(), data.data() + data.size());
    printValues(v.name, data.data(), v.dtype, v.elements);
    if (!options.outputsDir.empty()) {
      std::ofstream(options.outputsDir + "/" + v.name + ".bin", std::ios::binary).write(
          data.data(), static_cast<std::streamsize>(data.size()));
    }
  }
  for (const HostStream &s : streams) {
    if (!s.toDevice && !options.outputsDir.empty()) {
      std::ofstream(options.outputsDir + "/" + s.name + ".bin", std::ios::binary).write(
          s.data.data(), static_cast<std::streamsize>(s.data.size()));
    }
  }
  return 0;
}
"""
