"""The steady state of a compiled training step (torch_train.py): one native call over a pointer table
bound once (runtime/bound_run.py), after re-checking only what could invalidate that binding.

Once two slow steps in a row compiled to the same kernel, a `TrainPlan` keeps their binding. A later
step goes through it when
  - x and y have the shapes and dtypes the kernel was compiled for (their memory may move: they are
    the bound run's movable inputs, re-pointed at every step after an overlap check);
  - the optimizer has the same param groups holding the same parameters, each group's compile-time
    options are unchanged (its hyper-parameters are copied into the bound float64 inputs every step,
    so lr schedules take effect) and the same model parameters require gradients;
  - every parameter and state tensor is the same tensor at the same address (`p.data = ...`,
    load_state_dict and `state[p][name] = t` all fail this).
Anything else returns False and the caller takes the slow path, which re-checks everything, raises
what it raises, and builds a new plan. torch is needed to import this module.
"""
from __future__ import annotations

from operator import is_
from typing import Any

import numpy as np
import torch

_data_ptr = torch.Tensor.data_ptr


class TrainPlan:
    """What a steady-state step needs: the bound kernel and the facts it was bound under."""

    def __init__(self, run: Any, opt: Any, params: list[torch.Tensor], tensors: list[torch.Tensor],
                 state: list[tuple[torch.Tensor, str, torch.Tensor]], groups: list[tuple[int, tuple, np.ndarray]],
                 xa: np.ndarray, ya: np.ndarray) -> None:
        """params: the model's parameters; tensors: every bound parameter and state tensor; state: (param,
        name, tensor) of each bound state tensor; groups: (index, options, hyper-parameter array) per
        stepped param group; xa, ya: the arrays x and y were bound as."""
        self.run = run
        self.param_groups = opt.param_groups
        self.members = [(g, tuple(g["params"])) for g in opt.param_groups]
        self.groups = groups
        self.params = params
        self.requires = [p.requires_grad for p in params]
        self.tensors = tensors
        self.ptrs = [_data_ptr(t) for t in tensors]
        self.state_dict = opt.state
        self.state = state
        self.specs = (xa.shape, xa.dtype, ya.shape, ya.dtype)

    def step(self, opt: Any, xa: np.ndarray, ya: np.ndarray) -> bool:
        """Run the step if the binding still holds; False (nothing run) when the slow path must."""
        if (xa.shape, xa.dtype, ya.shape, ya.dtype) != self.specs or opt.param_groups is not self.param_groups:
            return False
        groups = opt.param_groups
        if len(groups) != len(self.members) or any(
                g is not h or len(g["params"]) != len(ps) or not all(map(is_, g["params"], ps))
                for g, (h, ps) in zip(groups, self.members)):
            return False
        if [p.requires_grad for p in self.params] != self.requires:
            return False
        if list(map(_data_ptr, self.tensors)) != self.ptrs or opt.state is not self.state_dict:
            return False
        state = opt.state
        if any(state.get(p, {}).get(n) is not t for p, n, t in self.state):
            return False
        for gi, flags, hyper in self.groups:
            f, values, _ = opt._group_spec(groups[gi])
            if f != flags:
                return False
            hyper[:] = values
        self.run.repoint([xa.ctypes.data, ya.ctypes.data])
        self.run()
        return True
