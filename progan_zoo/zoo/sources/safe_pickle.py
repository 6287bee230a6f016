"""Read the official ProGAN release pickles without running anything stored in them.

The official loader (``tfutil.Network.__setstate__``) ``exec``s the source text stored in every
network, so unpickling those files the usual way runs code. This unpickler resolves only the
globals the files need and treats each as data:

- ``tfutil.Network``: a plain holder of the pickled state dict (its ``build_module_src`` is kept
  as an inert string and never compiled);
- numpy's array, dtype and scalar reconstruction (and ``_frombuffer``, which protocol 5 uses),
  under the numpy 1.x (``numpy.core``) and 2.x (``numpy._core``) module names, limited to plain
  numeric dtypes.

Every other global (``os.system``, ``builtins.eval``, a torch class, ...) is refused with an
error that names it, before anything is called. ``BUILD`` and ``NEWOBJ`` are likewise limited to
these types. The pure-Python unpickler is used so those opcodes can be checked one by one.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

# Plain numeric dtypes only: never object arrays, whose state would be a list of pickled objects.
_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1", "?"}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global or an operation outside the allowlist."""


class NetworkState:
    """What a pickled ``tfutil.Network`` holds: its state dict, as plain data (nothing executed)."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError("a tfutil.Network whose state is not a dict")
        self.state = state


def _dtype(obj: Any, align: bool = False, copy: bool = False) -> np.dtype:
    name = obj.decode("latin-1") if isinstance(obj, bytes) else obj
    if not isinstance(name, str) or name.lstrip("<>|=") not in _DTYPES:
        raise UnsafePickleError(f"numpy dtype {name!r} (only plain numeric dtypes are read)")
    return np.dtype(name)


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"array reconstruction of {subtype!r} (only numpy.ndarray is read)")
    return np.ndarray.__new__(np.ndarray, (0,), "b")


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.fields is not None:
        raise UnsafePickleError(f"numpy scalar of dtype {dtype!r}")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise UnsafePickleError("numpy scalar with malformed data")
    return np.frombuffer(data, dtype=dtype)[0]


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's protocol-5 array pickling (an in-band buffer), for files written with pickle protocol 5."""
    if not isinstance(buf, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject \
            or dtype.fields is not None or not isinstance(shape, tuple) \
            or not all(isinstance(d, int) and d >= 0 for d in shape) or order not in ("C", "F"):
        raise UnsafePickleError("numpy array buffer with malformed arguments")
    count = int(np.prod(shape)) if shape else 1
    if len(buf) != count * dtype.itemsize:
        raise UnsafePickleError("numpy array buffer of the wrong size")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


_ALLOWED: dict[tuple[str, str], Any] = {("tfutil", "Network"): NetworkState}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _reconstruct
    _ALLOWED[(_mod, "scalar")] = _scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _frombuffer
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = _dtype


class _Unpickler(pickle._Unpickler):  # type: ignore[name-defined]  # the Python one: opcodes can be checked
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafePickleError(f"refuses global {module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refuses a persistent id (not an official network pickle)")

    def load_build(self) -> None:
        state = self.stack[-1]
        inst = self.stack[-2]
        if isinstance(inst, np.ndarray):
            # ndarray state: (version, shape, dtype, is_fortran, raw bytes).
            if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], np.dtype)
                    and not state[2].hasobject and state[2].fields is None and isinstance(state[4], bytes)):
                raise UnsafePickleError("refuses an array state that is not plain numeric data")
        elif isinstance(inst, np.dtype):
            if not (isinstance(state, tuple) and len(state) == 8 and state[3] is None and state[4] is None):
                raise UnsafePickleError("refuses a structured or unusual numpy dtype state")
        elif not isinstance(inst, NetworkState):
            raise UnsafePickleError(f"refuses to set the state of {type(inst).__name__}")
        super().load_build()

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    dispatch[pickle.BUILD[0]] = load_build

    def load_newobj(self) -> None:
        args = self.stack[-1]
        cls = self.stack[-2]
        if cls is not NetworkState or args:
            raise UnsafePickleError(f"refuses to create {getattr(cls, '__name__', cls)!r} objects")
        super().load_newobj()

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        raise UnsafePickleError("refuses NEWOBJ_EX (not used by the official network pickles)")

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_inst(self) -> None:
        raise UnsafePickleError("refuses INST (protocol 0 objects are not official network pickles)")

    dispatch[pickle.INST[0]] = load_inst

    def load_obj(self) -> None:
        raise UnsafePickleError("refuses OBJ (protocol 0/1 objects are not official network pickles)")

    dispatch[pickle.OBJ[0]] = load_obj


def _check_values(obj: Any, depth: int = 0) -> None:
    """After loading: only plain data (containers, numbers, strings, arrays, network states) remain."""
    if depth > 50:
        raise UnsafePickleError("nests data deeper than an official network pickle does")
    if isinstance(obj, NetworkState):
        _check_values(obj.state, depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_values(k, depth + 1)
            _check_values(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_values(v, depth + 1)
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UnsafePickleError("holds an object array")
    elif not isinstance(obj, (str, bytes, int, float, bool, type(None), np.generic, np.dtype)):
        raise UnsafePickleError(f"holds a {type(obj).__name__} object")


def safe_load(data: bytes) -> Any:
    """Unpickle official network pickle bytes with the allowlist above; raises UnsafePickleError,
    pickle.UnpicklingError, EOFError or ValueError on anything else."""
    obj = _Unpickler(io.BytesIO(data)).load()
    _check_values(obj)
    return obj


def safe_load_file(path: str | Path) -> Any:
    """``safe_load`` of a file's bytes."""
    return safe_load(Path(path).read_bytes())
