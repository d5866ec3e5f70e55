"""Read PyTorch ``state_dict`` files without PyTorch and without running their pickles.

Two container formats exist: the legacy one (torch < 1.6: pickles followed by raw storages, used
by torchvision's MobileNetV2 weights) and the zip one (``<name>/data.pkl`` plus one file per storage
under ``<name>/data/``, used by the TAESD family).  Both are read with a restricted unpickler that
knows only how to rebuild tensors and ordered dicts; any other global in the pickle is refused, so
a tampered weights file cannot run code -- it fails to load with :class:`pickle.UnpicklingError`.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np


class _Storage:
    """Placeholder for a torch storage whose bytes follow the pickles in a legacy file."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data: np.ndarray | None = None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        base = self.storage.data
        itemsize = base.itemsize
        return np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride]
        ).copy()


_STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "IntStorage": np.int32,
                   "DoubleStorage": np.float64, "HalfStorage": np.float16}


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Only the globals a torch state_dict needs; everything else is refused."""

    def __init__(self, file, storages: dict):
        super().__init__(file, encoding="latin1")
        self._storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights file")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        if key not in self._storages:
            self._storages[key] = _Storage(key, np.dtype(storage_type), int(numel))
        return self._storages[key]


def read_legacy_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a legacy-format (pre-1.6, non-zip) torch ``state_dict`` into numpy arrays."""
    raw = Path(path).read_bytes()
    f = io.BytesIO(raw)
    storages: dict[str, _Storage] = {}
    magic = _RestrictedUnpickler(f, storages).load()
    if magic != 0x1950A86A20F9469CFC6C:
        raise ValueError(f"{path} is not a legacy torch file (bad magic number)")
    _RestrictedUnpickler(f, storages).load()  # protocol version
    _RestrictedUnpickler(f, storages).load()  # sys info
    state = _RestrictedUnpickler(f, storages).load()
    keys = _RestrictedUnpickler(f, storages).load()
    for key in keys:
        st = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        nbytes = numel * st.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise ValueError(f"{path} is truncated")
        st.data = np.frombuffer(buf, dtype=st.dtype)
    return {k: v.numpy() for k, v in state.items() if isinstance(v, _LazyTensor)}


def read_zip_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a zip-format (torch >= 1.6) ``state_dict`` into numpy arrays."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path} is not a zip-format torch file") from exc
    with archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise ValueError(f"{path} has no single data.pkl")
        root = pkl[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        state = _RestrictedUnpickler(io.BytesIO(archive.read(pkl[0])), storages).load()
        for key, st in storages.items():
            buf = archive.read(f"{root}data/{key}")
            if len(buf) < st.numel * st.dtype.itemsize:
                raise ValueError(f"{path}: storage {key} is truncated")
            st.data = np.frombuffer(buf, dtype=st.dtype, count=st.numel)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state_dict")
    return {k: v.numpy() for k, v in state.items() if isinstance(v, _LazyTensor)}


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A ``state_dict`` in either container format, as numpy arrays."""
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # a damaged zip is still refused as a zip, not read as a pickle
    return read_zip_torch_state_dict(path) if is_zip else read_legacy_torch_state_dict(path)
