"""popxl.Session: compiles an Ir for a device and runs it, owning the variables' device buffers."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from compiler.driver import CompileOptions, compile, program_of
from compiler.ir import Ir
from compiler.ir.ambiguity import check_ambiguity

from compiler.ops.collectives import group_index

from .creation import DeviceToHostStream, HostToDeviceStream
from .ir import Ir as PopxlIr
from .host_indices import check_batch, host_index_checks
from .sharded_variables import device_value, gather_full, layouts
from .replication import (full_shape, group_members, initial_value, local_replicas, merge_outputs, split_streams,
                          variable_groups)
from .tensor import Tensor
from .utils import to_numpy

SUPPORTED = ("cpu", "interpreter")


def _aligned_copy(a: np.ndarray) -> np.ndarray:
    """A 64-byte aligned, C-contiguous copy (compiled loops are faster on aligned buffers)."""
    nbytes = max(a.nbytes, 1)
    raw = np.empty(nbytes + 64, dtype=np.uint8)
    off = (-raw.ctypes.data) % 64
    out = raw[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


class Session:
    def __init__(self, ir: "PopxlIr | Ir", device_desc: str = "cpu", weights_to_host_on_exit: bool = True,
                 options: CompileOptions | None = None) -> None:
        if device_desc in ("ipu_hw", "ipu_model") or not isinstance(device_desc, str) or device_desc not in SUPPORTED:
            raise ValueError(
                f"device {device_desc!r} is not available here: this compiler runs on the host CPU. Use "
                "Session(ir, 'cpu') for compiled native code or Session(ir, 'interpreter') for the numpy reference; "
                "to target an IPU, emit a Poplar program with `python -m tools.compile --target poplar`.")
        self.ir = ir  # as given (PopXL's session.ir); the program itself is self._core
        core = self._core = program_of(ir)
        # the user's stream handles key run()'s results; an Ir loaded from a file has none: names key them
        self._handles: dict[str, Any] = ir.stream_handles if isinstance(ir, PopxlIr) else {}
        if core.externals:  # a Session owns every buffer it runs over (get_tensor_data, checkpoints read them)
            names = [core.main.values[vid].name for vid in core.externals]
            raise ValueError(f"Session: this Ir has caller-owned buffers {names}, whose memory the caller binds "
                             "at every run; a Session owns its variables (it reads them back with get_tensor_data "
                             "and saves them in checkpoints). Run it with compiler.driver.compile(ir).run(...), "
                             "binding an array to each, or make them popxl.variable")
        check_ambiguity(core)
        self.device = device_desc
        opts = options or CompileOptions()
        opts.device = device_desc
        self.options = opts
        if opts.check_finite and device_desc == "cpu" and core.replication_factor > 1:
            raise NotImplementedError("CompileOptions(check_finite=True) with replication > 1 is checked only on "
                                      "Session(ir, 'interpreter'); use that device to find the first NaN/Inf")
        self._exe = compile(core, opts)
        self._sharded = layouts(self._exe)  # variables kept as one shard per replica (shard_weight_update)
        self._var_ids = list(core.variables)
        self._host = {vid: np.array(core.variables[vid], copy=True) for vid in self._var_ids}
        self._replicas, self._first_replica = local_replicas(core)
        # one set of device buffers per replica this process hosts; _dev is the first replica's
        self._devs = [{vid: _aligned_copy(self._on_device(vid, initial_value(core, vid, self._first_replica + r), r))
                       for vid in self._var_ids} for r in range(self._replicas)]
        self._dev = self._devs[0]
        self._attached = 0
        self._dirty = False  # device newer than host
        self.weights_to_host_on_exit = weights_to_host_on_exit
        self._loads = {op.attrs["stream"] for g in core.graphs.values() for op in g.ops if op.kind == "HostLoad"}
        self._index_checks = host_index_checks(core)

    # ------------------------------------------------------------ lifetime
    def __enter__(self) -> "Session":
        self._attached += 1
        if self._attached == 1:
            self.weights_from_host()
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        # also on an exception (Ctrl-C in a training loop): the steps that completed are kept
        if self._attached == 1 and self.weights_to_host_on_exit:
            self.weights_to_host()
        self._attached -= 1

    @property
    def is_attached(self) -> bool:
        return self._attached > 0

    def _require_attached(self, what: str) -> None:
        # PopXL: the device exists only inside `with session:`; these move data to or from it
        if not self.is_attached:
            raise ValueError(f"Must be attached to device before calling a runtime function ({what}). "
                             "Use `with session:` around it")

    def weights_from_host(self) -> None:
        self._require_attached("weights_from_host")
        for r, dev in enumerate(self._devs):
            for vid in self._var_ids:
                grouped = self._grouped(vid)
                np.copyto(dev[vid], self._on_device(vid, self._host[vid] if grouped is None else grouped[r], r))
        self._dirty = False

    def _on_device(self, vid: int, full: np.ndarray, local: int) -> np.ndarray:
        """What local replica `local` holds of a variable whose full value is `full` (a shard if sharded)."""
        return device_value(self._sharded.get(vid), full, self._first_replica + local)

    def _grouped(self, vid: int) -> np.ndarray | None:
        """Host data of a variable with one value per replica group, indexed by local replica."""
        g = variable_groups(self._core).get(vid)
        if g is None:
            return None
        stride, size, data = g
        return np.stack([data[group_index(self._first_replica + r, stride, size)] for r in range(self._replicas)])

    def weights_to_host(self) -> None:
        self._require_attached("weights_to_host")
        for vid in self._var_ids:
            if vid in self._sharded:  # the full layout from every replica's shard
                world = getattr(getattr(self._exe, "rendezvous", None), "world", None)
                np.copyto(self._host[vid], gather_full(self._sharded[vid], [d[vid] for d in self._devs],
                                                       self._first_replica, world))
                continue
            np.copyto(self._host[vid], self._dev[vid])
            members = group_members(self._core, vid, self._first_replica, self._replicas)
            if members is not None:
                data = variable_groups(self._core)[vid][2]
                for gi, r in enumerate(members):
                    np.copyto(data[gi], self._devs[r][vid])
        self._dirty = False

    # ---------------------------------------------------------------- run
    def _check_inputs(self, inputs: Mapping[Any, np.ndarray] | None) -> dict[str, np.ndarray]:
        inputs = dict(inputs or {})
        nht = self._core.num_host_transfers
        by_name: dict[str, np.ndarray] = {}
        for k, arr in inputs.items():
            if not isinstance(k, HostToDeviceStream):
                raise TypeError(f"Session.run: input keys must be host-to-device streams (popxl.h2d_stream), got {k!r}")
            if k.name not in self._loads:
                raise ValueError(f"Session.run: stream {k.name!r} is not loaded by any host_load in the main graph; "
                                 "remove it from the inputs")
            # lists, scalars, torch tensors; 64-bit host data is downcast as PopXL (unless the stream is 64-bit)
            a = to_numpy(arr, copy=False, downcast=k.dtype.numpy.itemsize < 8)
            want = self._full_input_shape(k.shape)
            if a.shape != want:
                lead = ("num_host_transfers, " if nht > 1 else "") + ("replicas, " if self._replicas > 1 else "")
                raise ValueError(
                    f"Session.run: stream {k.name!r} needs an array of shape {want} "
                    f"({lead}*stream shape {k.shape}), got {a.shape}")
            if a.dtype != k.dtype.numpy:
                raise TypeError(f"Session.run: stream {k.name!r} needs dtype {k.dtype.name}, got {a.dtype}; "
                                f"convert with .astype(np.{k.dtype.numpy})")
            by_name[k.name] = np.ascontiguousarray(a.reshape((nht, *k.shape)) if self._replicas == 1 else a)
        missing = self._loads - set(by_name)
        if missing:
            raise ValueError(f"Session.run: no data given for stream(s) {sorted(missing)}; every stream read by "
                             "host_load needs an array")
        return by_name

    def create_host_outputs(self) -> dict[DeviceToHostStream, np.ndarray]:
        """Zeroed arrays for every device-to-host stream, shaped as `run` returns them (see run_with_outputs)."""
        nht = self._core.num_host_transfers
        handles = self._handles
        return {handles.get(n, n): np.zeros(((nht,) if nht > 1 else ()) + tuple(s.spec.shape), s.spec.dtype.numpy)
                for n, s in self._core.streams.items() if s.direction == "d2h"}

    def run_with_outputs(self, inputs: Mapping[Any, np.ndarray] | None, outputs: Mapping[Any, np.ndarray]) -> None:
        """run, writing each stream's result into the caller's array in `outputs` (shape and dtype must match)."""
        got = self.run(inputs)
        for k, dst in outputs.items():
            if k not in got:
                raise ValueError(f"run_with_outputs: {k!r} is not a device-to-host stream of this session")
            src = got[k]
            if not isinstance(dst, np.ndarray) or dst.shape != src.shape or dst.dtype != src.dtype:
                raise ValueError(f"run_with_outputs: the array for {k!r} must be a numpy array of shape {src.shape} "
                                 f"and dtype {src.dtype}, got {getattr(dst, 'shape', None)} {getattr(dst, 'dtype', None)}")
            dst[...] = src

    def run(self, inputs: Mapping[Any, np.ndarray] | None = None) -> dict[DeviceToHostStream, np.ndarray]:
        self._require_attached("run")
        streams = self._check_inputs(inputs)
        check_batch(self._index_checks, streams)  # a bad host-fed index: refused before anything changes
        nht = self._core.num_host_transfers
        iters = self._executions()
        if hasattr(self._exe, "run_replicas"):
            return self._run_replicas(streams, iters)
        try:
            if self.options.check_finite and self.device != "interpreter":
                outs = self._run_checked(streams, iters)
            else:
                outs = self._exe.run(self._dev, streams, iters)
        finally:  # a run that failed partway may have changed the device state: report that real state
            self._dirty = True
        handles = self._handles
        result = {}
        for name, s in self._core.streams.items():
            if s.direction == "d2h" and name in outs:
                arr = outs[name]
                result[handles.get(name, name)] = arr if nht > 1 else arr[0]
        return result

    def _run_replicas(self, streams: dict[str, np.ndarray], nht: int) -> dict[DeviceToHostStream, np.ndarray]:
        shapes = {n: s.spec.shape for n, s in self._core.streams.items()}
        try:
            outs = self._exe.run_replicas(self._devs, split_streams(self._core, streams, shapes), nht)
        finally:  # a run that failed partway may have changed the replicas' state
            self._dirty = True
        handles = self._handles
        return {handles.get(n, n): a for n, a in merge_outputs(self._core, outs).items()}

    def _executions(self) -> int:
        """Executions of the main graph per run: num_host_transfers / the transfers one execution makes."""
        per = set(self._core.transfers_per_execution().values()) or {1}
        nht = self._core.num_host_transfers
        k = max(per)
        if len(per) > 1 or nht % k:
            raise ValueError(f"ir.num_host_transfers = {nht} does not fit the program: one execution of the main "
                             f"graph makes {sorted(self._core.transfers_per_execution().items())} host transfers "
                             "(stream: loads or stores); every stream must make the same number k per execution, "
                             "and num_host_transfers must be a multiple of k")
        return nht // k

    def expected_inputs(self) -> list[HostToDeviceStream]:
        """The host-to-device streams `run` needs data for."""
        handles = self._handles
        return [handles.get(n, n) for n in sorted(self._loads)]

    def _full_input_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The array shape `run` takes for a stream of `shape`: (num_host_transfers?, replicas?, *shape),
        each leading dim present only when > 1 (replicas: those this process hosts)."""
        return full_shape(self._core, tuple(shape))

    def _run_checked(self, streams: dict[str, np.ndarray], nht: int) -> dict[str, np.ndarray]:
        """Compiled run with the opt-in non-finite check: if any variable or output went NaN/Inf, replay the
        step on the reference interpreter from the saved state to name the first op and tensor that did."""
        before = {vid: a.copy() for vid, a in self._dev.items()}
        outs = self._exe.run(self._dev, streams, nht)
        bad = [self._core.main.values[vid].name for vid, a in self._dev.items()
               if a.dtype.kind == "f" and not np.all(np.isfinite(a))]
        bad += [n for n, a in outs.items() if a.dtype.kind == "f" and not np.all(np.isfinite(a))]
        if not bad:
            return outs
        from compiler.driver import reference_executable

        for vid, a in before.items():
            np.copyto(self._dev[vid], a)
        reference_executable(self._core, self.options).run(self._dev, streams, nht)  # raises, naming the op
        raise FloatingPointError(f"non-finite values in {bad} after the run")

    # ---------------------------------------------------------- variables
    def _vid(self, t: Any) -> int:
        v = getattr(t, "_value", t)
        if getattr(v, "kind", None) == "constant":
            return -v.id
        if getattr(v, "id", None) not in self._dev:
            raise TypeError(f"Tensor {getattr(t, 'id', t)} is not of type Constant or Variable: {t!r} is not a "
                            "variable or constant of this session's Ir; only their data is kept on the host (read "
                            "other tensors through a d2h_stream and host_store)")
        return v.id

    def get_tensor_data(self, t: Tensor) -> np.ndarray:
        vid = self._vid(t)
        if vid < 0:
            return np.array(self._core.constants[-vid], copy=True)
        if self.is_attached and self._dirty:
            self.weights_to_host()
        if vid in variable_groups(self._core):
            return np.array(variable_groups(self._core)[vid][2], copy=True)
        return np.array(self._host[vid], copy=True)

    def get_tensors_data(self, ts: Iterable[Tensor]) -> dict[Tensor, np.ndarray]:
        return {t: self.get_tensor_data(t) for t in ts}

    def write_variable_data(self, t: Tensor, data: np.ndarray) -> None:
        vid = self._vid(t)
        if vid < 0:
            raise TypeError(f"Tensor {t.id} is not of type Variable: {t!r} is a constant; only variables can be "
                            "written")
        if vid in variable_groups(self._core):
            raise NotImplementedError(f"write_variable_data({t.name!r}): the variable has one value per replica "
                                      "group; writing it is not supported yet (create it with the data instead)")
        cur = self._host[vid]
        # host scalars and array-likes take the variable's dtype (as PopXL); an ndarray must already have it
        a = data if isinstance(data, np.ndarray) else np.asarray(to_numpy(data, None, downcast=False), cur.dtype)
        if a.shape != cur.shape or a.dtype != cur.dtype:
            raise ValueError(f"write_variable_data({t.name!r}): expected {cur.dtype}{cur.shape}, got {a.dtype}{a.shape}")
        if self.is_attached and self._dirty:
            self.weights_to_host()
        np.copyto(cur, a)
        if self.is_attached:
            for r, dev in enumerate(self._devs):
                np.copyto(dev[vid], self._on_device(vid, a, r))

    def write_variables_data(self, datas: Mapping[Tensor, np.ndarray]) -> None:
        for t, d in datas.items():
            self.write_variable_data(t, d)

    # --------------------------------------------------------- checkpoints
    def _names(self) -> dict[str, int]:
        names: dict[str, int] = {}
        for vid in self._var_ids:
            n = self._core.main.values[vid].name
            if n in names:
                raise ValueError(f"two variables are named {n!r}; give variables unique names to checkpoint them")
            names[n] = vid
        return names

    def save_checkpoint(self, path) -> "object":
        """Write every variable (weights and optimizer state) atomically to `path` (.npz); see runtime/checkpoint.py."""
        from compiler.driver import save_checkpoint as save

        if self.is_attached and self._dirty:
            self.weights_to_host()
        return save(path, {n: self._host[vid] for n, vid in self._names().items()})

    def load_checkpoint(self, path) -> None:
        """Restore every variable from a checkpoint; names, shapes and dtypes must match."""
        from compiler.driver import load_checkpoint as load

        names = self._names()
        data = load(path, {n: (self._host[vid].shape, self._host[vid].dtype) for n, vid in names.items()})
        for n, vid in names.items():
            np.copyto(self._host[vid], data[n])
            if self.is_attached:
                for r, dev in enumerate(self._devs):
                    np.copyto(dev[vid], self._on_device(vid, data[n], r))
        self._dirty = False
