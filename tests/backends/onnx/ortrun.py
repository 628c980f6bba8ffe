"""Run an exported model with onnxruntime the way its documented interface says (test support).

The model's metadata names the variable inputs, their `__updated` outputs and the stream tensors; each
run feeds the previous run's updated variables back, as a caller of the model must.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort


def interface(model: onnx.ModelProto) -> tuple[list[dict], list[dict], int]:
    props = {p.key: p.value for p in model.metadata_props}
    return (json.loads(props["optgraph.variables"]), json.loads(props["optgraph.streams"]),
            int(props["optgraph.steps_per_run"]))


def session(model: onnx.ModelProto, optimise: bool = True) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3  # onnxruntime warns that variable initializers are overridable inputs
    if not optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so)


def run_steps(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]], optimise: bool = True
              ) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """One model run per entry of `feeds` ({h2d stream name: batch}). Returns (final value of every variable
    by IR name, [{d2h stream name: value} per run])."""
    variables, streams, _ = interface(model)
    sess = session(model, optimise)
    names = [o.name for o in sess.get_outputs()]
    inputs = {i.name for i in sess.get_inputs()}
    state: dict[str, Any] = {}
    outs = []
    for batch in feeds:
        inp = {v["input"]: state[v["input"]] for v in variables if v["input"] in state}
        for s in streams:
            if s["direction"] == "h2d" and s["tensor"] in inputs:
                inp[s["tensor"]] = np.asarray(batch[s["name"]])
        with np.errstate(all="ignore"):
            res = dict(zip(names, sess.run(None, inp)))
        for v in variables:
            if v["output"]:
                state[v["input"]] = res[v["output"]]
        outs.append({s["name"]: res[s["tensor"]] for s in streams if s["direction"] == "d2h" and s["tensor"] in res})
    initial = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    return {v["name"]: state.get(v["input"], initial[v["input"]]) for v in variables}, outs
