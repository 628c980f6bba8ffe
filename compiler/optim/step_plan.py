"""The steady-state step of the torch.optim drop-ins: one native call over a pointer table checked once.

A slow step (torch_step.CompiledStep._collect) builds zero-copy views of every parameter, gradient and
state tensor, checks them and runs the kernel. Once two slow steps in a row produced the same kernel
key, a `StepPlan` keeps what they bound; later steps re-check, in C-level passes over lists (`map`,
no per-tensor Python code), everything that could invalidate it, and make one native call:

- the param groups: the same list, the same group dicts holding the same parameters, the same
  compile-time options (hyper-parameters are copied into the kernel's float64 inputs when they
  change, so schedulers never rebuild anything). A group whose entries are all immutable (numbers,
  strings, None, tuples of them) is compared with a snapshot of its entries in one C-level pass,
  and only a changed group goes through `_group_spec`; a group holding a tensor (an lr tensor can be
  changed in place) goes through it every step;
- the parameters: the same data pointers and version counters (`p.data = ...` moves the pointer,
  `p.set_(...)` bumps the version; our kernel writes through numpy and bumps neither);
- the state: the same `optimizer.state` dict holding the same per-parameter dicts holding the same
  tensors (load_state_dict and `state[p][name] = t` both fail this);
- the gradients: present on the same parameters, with the strides, element count and dtype seen
  when the plan was built, not negated views; their data pointers may move (autograd allocates
  fresh gradients after zero_grad(set_to_none=True)) and are re-pointed after an overlap check.

Anything else (or any exception from these checks, e.g. a sparse gradient has no strides) sends the
step down the slow path, which re-checks everything, raises what it raised before, and rebuilds the
plan. Needs torch (imported by compiler.optim.torch only).
"""
from __future__ import annotations

from itertools import repeat
from operator import attrgetter, getitem, is_
from typing import Any

import numpy as np
import torch

_GRAD = attrgetter("grad")
_DTYPE = attrgetter("dtype")
_VERSION = attrgetter("_version")
_data_ptr = torch.Tensor.data_ptr
_stride = torch.Tensor.stride
_numel = torch.Tensor.numel
_is_neg = torch.Tensor.is_neg


class StepPlan:
    """What one steady-state step needs: the bound kernel and the facts it was bound under."""

    def __init__(self, opt: Any, bound: Any, groups: list[tuple[dict, tuple, np.ndarray]],
                 params: list[torch.Tensor], names: list[tuple[str, ...]]) -> None:
        """groups: per stepped param group (its dict, its compile-time options, its hyper-parameter
        array); params: the parameters with a gradient, in kernel order (their gradients are the bound
        run's movable variables, in that order); names: the names of each one's state tensors."""
        self.bound = bound
        self.param_groups = opt.param_groups
        self.state = opt.state
        self.state_values = list(opt.state.values())
        self.all_groups = [(g, tuple(g["params"])) for g in opt.param_groups]
        self.groups = groups
        self.snapshots = [_snapshot(g) for g, _, _ in groups]
        self.all_params = [p for g in opt.param_groups for p in g["params"]]
        self.nones = [p.grad is None for p in self.all_params]
        self.params = params
        self.ptrs = list(map(_data_ptr, params))
        self.versions = list(map(_VERSION, params))
        self.state_at = ([opt.state[p] for p, ns in zip(params, names) for _ in ns],
                         [n for ns in names for n in ns])
        self.tensors = list(map(getitem, *self.state_at))
        grads = [p.grad for p in params]
        self.strides = list(map(_stride, grads))
        self.numels = list(map(_numel, grads))
        self.dtypes = list(map(_DTYPE, grads))
        self.pick = (lambda gs: [g for g, none in zip(gs, self.nones) if not none]) if any(self.nones) else None

    def step(self, opt: Any, group_spec: Any) -> bool:
        """Run one step if nothing changed since the plan was built; False (nothing done) otherwise."""
        try:
            grads = self._check(opt, group_spec)
        except Exception:  # e.g. a sparse gradient has no strides: the slow path says what is wrong
            return False
        if grads is None:
            return False
        self.bound.repoint(list(map(_data_ptr, grads)))
        self.bound()
        return True

    def _check(self, opt: Any, group_spec: Any) -> list[torch.Tensor] | None:
        pgs = opt.param_groups
        if pgs is not self.param_groups or len(pgs) != len(self.all_groups):
            return None
        for group, (planned, params) in zip(pgs, self.all_groups):
            ps = group["params"]
            if group is not planned or len(ps) != len(params) or not all(map(is_, ps, params)):
                return None
        snapshots = self.snapshots
        for i, (group, flags, hyper) in enumerate(self.groups):
            snap = snapshots[i]
            if snap is not None and len(group) == snap[0] and list(map(getitem, repeat(group), snap[1])) == snap[2]:
                continue
            f, h, _ = group_spec(group)
            if f != flags:
                return None
            hyper[:] = h
            snapshots[i] = _snapshot(group)
        state = opt.state
        if (state is not self.state or len(state) != len(self.state_values)
                or not all(map(is_, state.values(), self.state_values))):
            return None
        if (list(map(_data_ptr, self.params)) != self.ptrs or list(map(_VERSION, self.params)) != self.versions
                or not all(map(is_, map(getitem, *self.state_at), self.tensors))):
            return None
        grads = list(map(_GRAD, self.all_params))
        if list(map(is_, grads, repeat(None))) != self.nones:
            return None
        if self.pick is not None:
            grads = self.pick(grads)
        if (list(map(_stride, grads)) != self.strides or list(map(_numel, grads)) != self.numels
                or list(map(_DTYPE, grads)) != self.dtypes or any(map(_is_neg, grads))):
            return None
        return grads



_IMMUTABLE = (float, int, str, type(None))  # bool is an int


def _snapshot(group: dict) -> tuple[int, list, list] | None:
    """(size, keys, values) of a group's entries besides "params" when every value is immutable (so
    equal values later mean the same hyper-parameters), else None: the group is read every step."""
    keys = [k for k in group if k != "params"]
    values = [group[k] for k in keys]
    if all(isinstance(v, _IMMUTABLE) or (type(v) is tuple and all(isinstance(x, _IMMUTABLE) for x in v))
           for v in values):
        return len(group), keys, values
    return None
