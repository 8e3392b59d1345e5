"""Checkpoints of the official PyTorch IRMAE code, read and written without PyTorch.

The official training script (facebookresearch/irmae) saves `net.state_dict()` of its
`model.AE` with `torch.save`: a legacy pickle stream under torch 1.4 (which its
requirements pin), a zip archive under torch >= 1.6. This module

- reads both formats with the standard library and numpy (`read_state_dict`), through
  an unpickler that resolves only the globals a tensor checkpoint needs and refuses any
  other before anything in the file runs;
- maps the official key names and tensor layouts onto the Keras layers of
  `irmae_keras.architectures` (`official_config`, `load_official_weights`) and back
  (`official_state_dict`);
- writes a state_dict in either format (`write_state_dict`), which `torch.load`
  (weights_only) and the official `model.AE(args).load_state_dict(...)` accept; torch
  < 1.6, such as the official 1.4, reads only the legacy one.

`Autoencoder.from_official_checkpoint(path)` and `model.save_official_checkpoint(path)`
combine them. Every problem with a file is a `ValueError` of one line.

Example:
```python
model = irmae_keras.Autoencoder.from_official_checkpoint("shapes_irmae.pth")
model.save_official_checkpoint("back.pth")   # torch.load + load_state_dict(strict=True)
state = irmae_keras.official.read_state_dict("any_state_dict.pt")  # name → numpy array
```
"""

import collections
import os
import pickle
import re
import struct
import zipfile

import keras
import numpy as np

from irmae_keras.api_export import irmae_export
from irmae_keras.staging import atomic_path
from irmae_keras.utils import check_choice

# --- The official model.AE: module names in the order of the Keras networks' weighted layers.
OFFICIAL_MODULES = {
    "shapes": {
        "encoder": ("enc.dcnn.0", "enc.dcnn.2", "enc.dcnn.4", "enc.dcnn.6", "enc.dcnn.8"),
        "decoder": ("dec.dcnn.0", "dec.dcnn.2", "dec.dcnn.4", "dec.dcnn.6", "dec.dcnn.8"),
    },
    "mnist": {
        "encoder": ("enc.dcnn.0", "enc.dcnn.2", "enc.dcnn.4", "enc.dcnn.6", "enc.fc"),
        "decoder": ("dec.fc", "dec.dcnn.1", "dec.dcnn.3", "dec.dcnn.5"),
    },
    "celeb_a": {
        "encoder": ("enc.dcnn.0", "enc.dcnn.2", "enc.dcnn.4", "enc.dcnn.6", "enc.fc"),
        "decoder": ("dec.fc", "dec.dcnn.0", "dec.dcnn.2", "dec.dcnn.4", "dec.dcnn.6"),
    },
}
STACK_KEY = "mlp.hidden.{}.weight"  # the official MLP: bias-free n×n Linears, applied in order
_STACK_PATTERN = re.compile(r"mlp\.hidden\.(\d+)\.weight")
OVERRIDES = ("architecture", "variant", "latent_dim", "linear_layers", "name", "penalty",
             "kl_weight", "seed")

# --- torch.save's file formats.
FILE_FORMATS = ("zip", "legacy")  # torch >= 1.6's default; torch 1.4's (read by every version)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
LEGACY_SYS_INFO = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                   "type_sizes": {"short": 2, "int": 4, "long": 4}}
ZIP_ARCHIVE = "archive"  # the folder every record of a written zip lives in
ZIP_VERSION = b"3\n"  # the record format version torch >= 1.6 writes for plain tensors
STORAGE_ALIGNMENT = 64  # torch aligns each storage's bytes in the zip (for mmap loading)
# Typed storage class → numpy dtype of its elements ("bfloat16" is widened to float32).
STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "UntypedStorage": "uint8",
}
_WRITABLE_STORAGES = {np.dtype(dtype): name for name, dtype in STORAGE_DTYPES.items()
                      if dtype != "bfloat16" and name != "UntypedStorage"}


class _RefusedGlobal(ValueError):
    """A pickle asked for a global that no tensor checkpoint needs."""


class _StorageType:
    """What `torch.FloatStorage` & co. resolve to: a name and a dtype, not callable."""

    __slots__ = ("name", "dtype")

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    """A storage's elements; `data` (bytes) arrives when the file section is read."""

    __slots__ = ("dtype", "numel", "data", "root", "start")

    def __init__(self, dtype, numel, root=None, start=0):
        self.dtype, self.numel, self.data, self.root, self.start = dtype, numel, None, root, start

    def elements(self):
        """The storage as a flat little-endian numpy array (a view for a legacy view)."""
        if self.root is not None:
            return self.root.elements()[self.start:self.start + self.numel]
        if self.data is None:
            raise ValueError("a tensor refers to a storage whose data is not in the file")
        raw_dtype = "<u2" if self.dtype == "bfloat16" else np.dtype(self.dtype).newbyteorder("<")
        return np.frombuffer(self.data, dtype=raw_dtype, count=self.numel)


class _TensorRef:
    """A tensor to cut out of a storage once all storages are read."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self):
        base = self.storage.elements()
        if 0 in self.size:
            values = np.zeros(self.size, dtype=base.dtype)
        else:
            # Check the extent before as_strided, which would read outside the buffer, and
            # the element count (a state_dict's tensors never repeat elements), which bounds
            # the memory a file can ask for by its size.
            last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            if last >= len(base) or np.prod(self.size, dtype=object) > len(base):
                raise ValueError(
                    f"a tensor of size {self.size}, stride {self.stride} at offset "
                    f"{self.offset} does not fit in its storage of {len(base)} elements")
            values = np.lib.stride_tricks.as_strided(
                base[self.offset:], shape=self.size,
                strides=tuple(s * base.itemsize for s in self.stride), writeable=False).copy()
        if self.storage.dtype == "bfloat16":  # the upper half of a float32
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(values.dtype.newbyteorder("="), copy=False)


def _check_ints(what, values, count=None):
    if not isinstance(values, tuple) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise ValueError(f"a tensor's {what} is not a tuple of non-negative integers")
    if count is not None and len(values) != count:
        raise ValueError(f"a tensor's {what} has {len(values)} entries, its size {count}")
    return values


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """Stands in for `torch._utils._rebuild_tensor_v2`: records where the tensor is."""
    if not isinstance(storage, _Storage):
        raise ValueError("a tensor is rebuilt from something that is not a storage")
    if isinstance(storage_offset, bool) or not isinstance(storage_offset, int) or storage_offset < 0:
        raise ValueError("a tensor's storage offset is not a non-negative integer")
    size = _check_ints("size", size)
    return _TensorRef(storage, storage_offset, size, _check_ints("stride", stride, len(size)))


def _rebuild_tensor(storage, storage_offset, size, stride):
    """Stands in for `torch._utils._rebuild_tensor` (torch < 1.0)."""
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Stands in for `torch._utils._rebuild_parameter`: a Parameter is its tensor."""
    if not isinstance(data, _TensorRef):
        raise ValueError("a parameter is rebuilt from something that is not a tensor")
    return data


_REBUILDERS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _TensorUnpickler(pickle.Unpickler):
    """Resolves only the tensor-rebuild globals; `load_storage` serves persistent ids."""

    def __init__(self, handle, load_storage=None):
        super().__init__(handle)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) in _REBUILDERS:
            return _REBUILDERS[(module, name)]
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise _RefusedGlobal(f"{module}.{name}")

    def persistent_load(self, pid):
        if self._load_storage is None or not (
                isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int) and not isinstance(pid[4], bool) and pid[4] >= 0):
            raise ValueError("a persistent id that is not a tensor storage")
        view = pid[5] if len(pid) == 6 else None
        return self._load_storage(pid[1].dtype, pid[2], pid[4], view)


def _unpickle(handle, load_storage=None):
    return _TensorUnpickler(handle, load_storage).load()


def _storages_of_zip(archive, prefix):
    """`load_storage` for a zip archive: each storage is the record `data/<key>`."""
    storages = {}

    def load_storage(dtype, key, numel, view):
        if key not in storages:
            record = f"{prefix}data/{key}"
            try:
                info = archive.getinfo(record)
            except KeyError:
                raise ValueError(f"it has no record {record} for a storage") from None
            if info.file_size != numel * _itemsize(dtype):  # before reading: no zip bombs
                raise ValueError(f"record {record} holds {info.file_size} bytes, not the "
                                 f"{numel} {dtype} elements its storage declares")
            storages[key] = _Storage(dtype, numel)
            storages[key].data = archive.read(record)
        elif storages[key].dtype != dtype:
            raise ValueError(f"storage {key} is read as both {storages[key].dtype} and {dtype}")
        return storages[key]

    return load_storage


def _itemsize(dtype):
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError("a zip archive without exactly one <folder>/data.pkl: not a torch.save file")
        prefix = pickles[0][:-len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise ValueError("its tensors are stored big-endian; save it on a little-endian machine")
        with archive.open(pickles[0]) as handle:
            return _unpickle(handle, _storages_of_zip(archive, prefix))


def _read_legacy(handle):
    # Header pickles first: the magic number, the format version and the system info.
    if _unpickle(handle) != LEGACY_MAGIC:
        raise ValueError("neither a zip archive nor a legacy torch.save stream")
    protocol = _unpickle(handle)
    if protocol != LEGACY_PROTOCOL:
        raise ValueError(f"legacy format version {protocol!r}, not {LEGACY_PROTOCOL}")
    _unpickle(handle)
    roots = {}

    def load_storage(dtype, key, numel, view):
        root = roots.setdefault(key, _Storage(dtype, numel))
        if root.dtype != dtype:
            raise ValueError(f"storage {key} is read as both {root.dtype} and {dtype}")
        if view is None:
            return root
        # (view key, element offset, element count): a slice of the root storage (torch < 1.0).
        if not (isinstance(view, tuple) and len(view) == 3 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in view[1:])
                and view[1] + view[2] <= numel):
            raise ValueError(f"storage {key} has a malformed view {view!r}")
        return _Storage(dtype, view[2], root=root, start=view[1])

    state = _unpickle(handle, load_storage)
    keys = _unpickle(handle)
    left = os.fstat(handle.fileno()).st_size - handle.tell()
    if not isinstance(keys, list):
        raise ValueError("the storage key list is missing")
    for key in keys:  # each storage: int64 element count, then its raw little-endian bytes
        storage = roots.get(key)
        if storage is None:
            raise ValueError(f"the file holds data for storage {key!r}, which no tensor uses")
        count = int.from_bytes(handle.read(8), "little", signed=True)
        if count != storage.numel:
            raise ValueError(f"storage {key} holds {count} elements, not the {storage.numel} declared")
        size = count * _itemsize(storage.dtype)
        if size > left - 8:  # before reading: a claimed size cannot exceed the file
            raise ValueError("the file ends inside a storage (truncated)")
        storage.data = handle.read(size)
        left -= 8 + size
    return state


def _state_arrays(state):
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a state_dict "
                         "(save net.state_dict(), not the module)")
    arrays = collections.OrderedDict()
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, _TensorRef):
            raise ValueError(f"its entry {key!r} is not a tensor: not a plain state_dict "
                             "(save net.state_dict() itself)")
        arrays[key] = value.array()
    return arrays


@irmae_export("irmae_keras.official.read_state_dict")
def read_state_dict(path):
    """Reads a `torch.save(state_dict)` file without PyTorch.

    Both formats: the zip archive of torch >= 1.6 and the legacy stream of torch 1.4.
    The pickle inside may only ask for the tensor-rebuild functions, the storage types
    and `collections.OrderedDict`; a file that asks for anything else (a malicious or
    a non-checkpoint file) is refused before any of it runs.

    Args:
        path: str or path-like. The file.

    Returns:
        An `OrderedDict` of key → numpy array (C-contiguous, native byte order; bfloat16
        tensors widen to float32).

    Raises:
        ValueError: one line naming the file and the problem (a refused global, a
            truncated or foreign file, a tensor outside its storage).
    """
    try:
        with open(path, "rb") as handle:
            is_zip = handle.read(4) == b"PK\x03\x04"
            if not is_zip:
                handle.seek(0)
                state = _read_legacy(handle)
        if is_zip:
            state = _read_zip(path)
        return _state_arrays(state)
    except _RefusedGlobal as refused:
        raise ValueError(
            f"{path}: refused: its pickle asks for {refused}, which a tensor checkpoint never "
            "needs (a malicious or foreign file); nothing from it was run.") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror or error}).") from None
    except Exception as error:  # a foreign or damaged pickle raises many types
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{path}: not a readable torch.save state_dict: {reason}.") from None


# --- Writing torch.save's formats by hand: protocol-2 opcodes naming torch's globals by string.

def _op_global(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii")


def _op_string(text):
    data = text.encode("utf-8")
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _op_int(value):
    if 0 <= value < 256:
        return pickle.BININT1 + bytes([value])
    if -2**31 <= value < 2**31:
        return pickle.BININT + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(data)]) + data


def _op_tuple(values):
    return pickle.MARK + b"".join(_op_int(v) for v in values) + pickle.TUPLE


def _state_pickle(entries, legacy=False):
    """The pickle of an OrderedDict of tensors, as torch writes it (one storage each); a
    legacy persistent id has a sixth field, the view (None)."""
    ordered_dict = _op_global("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
    parts = [pickle.PROTO + bytes([2]), ordered_dict, pickle.MARK]
    for key, storage_name, storage_key, array in entries:
        strides = tuple(s // array.itemsize for s in array.strides)
        parts += [
            _op_string(key), _op_global("torch._utils", "_rebuild_tensor_v2"), pickle.MARK,
            pickle.MARK, _op_string("storage"), _op_global("torch", storage_name),
            _op_string(storage_key), _op_string("cpu"), _op_int(array.size),
            pickle.NONE if legacy else b"", pickle.TUPLE, pickle.BINPERSID,
            _op_int(0), _op_tuple(array.shape), _op_tuple(strides), pickle.NEWFALSE,
            ordered_dict, pickle.TUPLE, pickle.REDUCE,
        ]
    parts += [pickle.SETITEMS, pickle.STOP]
    return b"".join(parts)


def _write_record(archive, handle, name, payload, align=False):
    info = zipfile.ZipInfo(f"{ZIP_ARCHIVE}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
    if align:  # pad the local header's extra field so that the bytes start aligned, as torch
        header = 30 + len(info.filename.encode("ascii")) + 4
        pad = -(handle.tell() + header) % STORAGE_ALIGNMENT
        info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    archive.writestr(info, payload, compress_type=zipfile.ZIP_STORED)


def _write_zip(handle, entries):
    with zipfile.ZipFile(handle, "w") as archive:
        _write_record(archive, handle, "data.pkl", _state_pickle(entries))
        _write_record(archive, handle, "byteorder", b"little")
        for _, _, storage_key, array in entries:
            _write_record(archive, handle, f"data/{storage_key}", array.tobytes(), align=True)
        _write_record(archive, handle, "version", ZIP_VERSION)


def _write_legacy(handle, entries):
    for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, LEGACY_SYS_INFO):
        handle.write(pickle.dumps(header, protocol=2))
    handle.write(_state_pickle(entries, legacy=True))
    handle.write(pickle.dumps([storage_key for _, _, storage_key, _ in entries], protocol=2))
    for _, _, _, array in entries:
        handle.write(struct.pack("<q", array.size) + array.tobytes())


@irmae_export("irmae_keras.official.write_state_dict")
def write_state_dict(state_dict, path, file_format="zip"):
    """Writes `state_dict` as `torch.save` does, without PyTorch.

    `torch.load(path, weights_only=True)` returns the same keys with tensors of the same
    shapes, dtypes and values. The file is written to a temporary path and renamed.

    Args:
        state_dict: mapping. Key (str) → numpy array of float64, float32, float16,
            int64, int32, int16, int8, uint8 or bool.
        path: str or path-like. The file to write.
        file_format: str. `"zip"`, the format of torch >= 1.6, or `"legacy"`, the one
            torch 1.4 writes, which every torch version reads (torch < 1.6 reads only
            this one). Defaults to `"zip"`.

    Returns:
        `path`.
    """
    check_choice("file_format", file_format, FILE_FORMATS)
    entries = []
    for index, (key, value) in enumerate(state_dict.items()):
        array = np.asarray(value, order="C")  # (ascontiguousarray would make a scalar 1-D)
        native = array.dtype.newbyteorder("=")
        if not isinstance(key, str) or native not in _WRITABLE_STORAGES:
            raise ValueError(f"state_dict entry {key!r}: a str key and an array of "
                             f"{', '.join(sorted(str(d) for d in _WRITABLE_STORAGES))} are "
                             f"needed; received {type(key).__name__} → {array.dtype}.")
        little = array.astype(native.newbyteorder("<"), copy=False)
        entries.append((key, _WRITABLE_STORAGES[native], str(index), little))
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            (_write_zip if file_format == "zip" else _write_legacy)(handle, entries)
    return path


# --- The official layout ↔ the Keras layers.

def _module_keys(architecture):
    modules = OFFICIAL_MODULES[architecture]
    return {f"{m}.{p}" for m in modules["encoder"] + modules["decoder"] for p in ("weight", "bias")}


def _short(names, limit=3):
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _match_architecture(state_dict, source):
    keys = {k for k in state_dict if not _STACK_PATTERN.fullmatch(k)}
    distance = {a: len(keys ^ _module_keys(a)) for a in OFFICIAL_MODULES}
    best = min(distance, key=distance.get)
    if distance[best]:
        missing, unexpected = _module_keys(best) - keys, keys - _module_keys(best)
        parts = ([f"missing {_short(missing)}"] if missing else []) + (
            [f"unexpected {_short(unexpected)}"] if unexpected else [])
        raise ValueError(f"{source} fits no official IRMAE architecture (shapes, mnist, celeb_a): "
                         f"closest is {best}, {'; '.join(parts)}.")
    return best


def _tensor(state_dict, key, rank, source):
    value = state_dict.get(key)
    if value is None or np.ndim(value) != rank:
        found = "missing" if value is None else f"of shape {tuple(np.shape(value))}"
        raise ValueError(f"{source}: {key} is {found}; the official model has a {rank}-D tensor there.")
    return value


@irmae_export("irmae_keras.official.official_config")
def official_config(state_dict, source="the checkpoint", **overrides):
    """The `build_autoencoder` arguments of an official state_dict, inferred from its keys.

    The architecture from the key names, n from the decoder's input, the variant from the
    encoder's output (n: AE or IRMAE, 2n: VAE) and l from the `mlp.hidden.*` keys.

    Args:
        state_dict: mapping. Key → array, as `read_state_dict` returns.
        source: str. Names the checkpoint in error messages.
        **overrides: any of `architecture`, `variant`, `latent_dim`, `linear_layers`
            (used instead of the inferred values; `load_official_weights` then checks
            that the tensors fit) and `name`, `penalty`, `kl_weight`, `seed` (passed on).

    Returns:
        dict. Keyword arguments of `irmae_keras.build_autoencoder`.

    Raises:
        ValueError: an unknown override, or a state_dict that fits no official model.
    """
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"unknown override(s) {', '.join(unknown)}; allowed: {', '.join(OVERRIDES)}.")
    architecture = overrides.get("architecture") or _match_architecture(state_dict, source)
    if architecture not in OFFICIAL_MODULES:
        raise ValueError(f"`architecture` must be one of {sorted(OFFICIAL_MODULES)}; "
                         f"received {architecture!r}.")
    modules = OFFICIAL_MODULES[architecture]
    first = f"{modules['decoder'][0]}.weight"
    # A ConvTranspose2d weight is (in, out, kh, kw), a Linear weight (out, in).
    if architecture == "shapes":
        latent_dim = int(_tensor(state_dict, first, 4, source).shape[0])
    else:
        latent_dim = int(_tensor(state_dict, first, 2, source).shape[1])
    head = f"{modules['encoder'][-1]}.weight"
    code_width = int(_tensor(state_dict, head, 4 if architecture == "shapes" else 2, source).shape[0])
    stack = [int(_STACK_PATTERN.fullmatch(k).group(1)) for k in state_dict if _STACK_PATTERN.fullmatch(k)]
    linear_layers = max(stack) + 1 if stack else 0
    if code_width == latent_dim:
        variant = "irmae" if linear_layers else "ae"
    elif code_width == 2 * latent_dim and not linear_layers:
        variant = "vae"
    else:
        raise ValueError(
            f"{source}: the encoder ({head}) emits {code_width} values and the decoder takes "
            f"{latent_dim} with {linear_layers} linear layers: neither an AE/IRMAE (equal) nor "
            "a VAE (twice, no linear layers).")
    config = {"preset_or_architecture": architecture, "variant": variant,
              "latent_dim": latent_dim, "linear_layers": linear_layers}
    for key, value in overrides.items():
        config["preset_or_architecture" if key == "architecture" else key] = value
    return config


class _Slot:
    """One official tensor: its key, the Keras variable and how the layouts differ."""

    def __init__(self, key, variable, kind, geometry=None):
        self.key, self.variable, self.kind, self.geometry = key, variable, kind, geometry

    @property
    def torch_shape(self):
        shape = tuple(self.variable.shape)
        if len(shape) == 4:  # Conv2D (kh, kw, in, out) / Conv2DTranspose (kh, kw, out, in)
            return (shape[3], shape[2], shape[0], shape[1])
        return shape[::-1]

    def to_keras(self, value):
        kind, geometry = self.kind, self.geometry
        if kind == "conv":  # (out, in, kh, kw) → (kh, kw, in, out); transposed: (in, out, …) → (…, out, in)
            return value.transpose(2, 3, 1, 0)
        if kind == "fc_in":  # the Linear reads a channel-major (C, H, W) flatten; Keras (H, W, C)
            height, width, channels = geometry
            out = value.shape[0]
            return value.reshape(out, channels, height, width).transpose(2, 3, 1, 0).reshape(-1, out)
        if kind == "fc_out":  # the Linear's output is viewed as (C, H, W); Keras reshapes (H, W, C)
            height, width, channels = geometry
            n = value.shape[1]
            return value.reshape(channels, height, width, n).transpose(3, 1, 2, 0).reshape(n, -1)
        if kind == "fc_out_bias":
            height, width, channels = geometry
            return value.reshape(channels, height, width).transpose(1, 2, 0).reshape(-1)
        if kind == "linear":  # (out, in) → (in, out)
            return value.T
        return value

    def to_torch(self, value):
        kind, geometry = self.kind, self.geometry
        if kind == "conv":
            return value.transpose(3, 2, 0, 1)
        if kind == "fc_in":
            height, width, channels = geometry
            out = value.shape[1]
            return value.reshape(height, width, channels, out).transpose(3, 2, 0, 1).reshape(out, -1)
        if kind == "fc_out":
            height, width, channels = geometry
            n = value.shape[0]
            return value.reshape(n, height, width, channels).transpose(3, 1, 2, 0).reshape(-1, n)
        if kind == "fc_out_bias":
            height, width, channels = geometry
            return value.reshape(height, width, channels).transpose(2, 0, 1).reshape(-1)
        if kind == "linear":
            return value.T
        return value


def _describe(model):
    return (f"official {model.architecture} {model.variant} (n={model.latent_dim}, "
            f"l={len(model.linear_stack.kernels) if model.linear_stack else 0})")


def _network_slots(network, modules, source):
    layers = [layer for layer in network.layers if layer.weights]
    if len(layers) != len(modules) or any(len(layer.weights) != 2 for layer in layers):
        raise ValueError(f"{source}: its {network.name} is not the official layer list "
                         f"({len(layers)} layers with weights, the official {len(modules)}).")
    slots = []
    for layer, module in zip(layers, modules):
        kind, bias_kind, geometry = "conv", "bias", None
        if isinstance(layer, keras.layers.Dense):
            # The encoder's Linear follows a Flatten, the decoder's precedes a Reshape.
            kind = "fc_in" if module.startswith("enc.") else "fc_out"
            bias_kind = "fc_out_bias" if kind == "fc_out" else "bias"
            reshape = keras.layers.Flatten if kind == "fc_in" else keras.layers.Reshape
            found = [lay for lay in network.layers if isinstance(lay, reshape)]
            geometry = tuple((found[0].input if kind == "fc_in" else found[0].output).shape[1:])
        elif not isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            raise ValueError(f"{source}: layer {layer.name} of its {network.name} is a "
                             f"{type(layer).__name__}, not the official convolution.")
        slots.append(_Slot(f"{module}.weight", layer.kernel, kind, geometry))
        slots.append(_Slot(f"{module}.bias", layer.bias, bias_kind, geometry))
    return slots


def _slots(model, source="the model"):
    """Every official tensor of `model`'s encoder and decoder networks (no stack)."""
    if getattr(model, "architecture", None) not in OFFICIAL_MODULES:
        raise ValueError(
            f"{source} has architecture {getattr(model, 'architecture', None)!r}; only the "
            f"official {', '.join(OFFICIAL_MODULES)} map to the official model.AE.")
    modules = OFFICIAL_MODULES[model.architecture]
    return (_network_slots(model.encoder_network, modules["encoder"], source)
            + _network_slots(model.decoder_network, modules["decoder"], source))


@irmae_export("irmae_keras.official.load_official_weights")
def load_official_weights(model, state_dict, source="the checkpoint"):
    """Sets `model`'s weights from an official state_dict, converting every layout.

    Conv2d kernels (out, in, kh, kw) and ConvTranspose2d kernels (in, out, kh, kw)
    become Keras' (kh, kw, in, out) and (kh, kw, out, in); Linear weights (out, in)
    become (in, out), with the channel-major (C, H, W) order of PyTorch's flatten
    before `enc.fc` and view after `dec.fc` permuted to Keras' (H, W, C); each
    `mlp.hidden.i.weight` W becomes the stack's kernel Wᵀ. Nothing is assigned unless
    every key and shape fits.

    Args:
        model: `Autoencoder` built by `build_autoencoder` for the checkpoint (see
            `official_config`): untied stack, official architecture.
        state_dict: mapping. Key → array.
        source: str. Names the checkpoint in error messages.

    Returns:
        `model`.

    Raises:
        ValueError: missing or unexpected keys, or a tensor of the wrong shape (one line).
    """
    slots = _slots(model, source)
    stack = model.linear_stack
    if stack is not None:
        if stack.tying != "none":
            raise ValueError(f"{source}: the official MLP has untied matrices; build the model "
                             "with tying='none'.")
        slots += [_Slot(STACK_KEY.format(i), kernel, "linear") for i, kernel in enumerate(stack.kernels)]
    expected = {slot.key: slot.torch_shape for slot in slots}
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    wrong = [f"{key} {tuple(np.shape(state_dict[key]))} (expected {expected[key]})"
             for key in sorted(set(expected) & set(state_dict))
             if tuple(np.shape(state_dict[key])) != expected[key]]
    not_float = [key for key in sorted(set(expected) & set(state_dict))
                 if not np.issubdtype(np.asarray(state_dict[key]).dtype, np.floating)]
    problems = ([f"missing {_short(missing)}"] if missing else []) + (
        [f"unexpected {_short(unexpected)}"] if unexpected else []) + (
        [f"wrong shape {'; '.join(wrong[:3])}{' …' if len(wrong) > 3 else ''}"] if wrong else []) + (
        [f"not floating point {_short(not_float)}"] if not_float else [])
    if problems:
        raise ValueError(f"{source} does not fit the {_describe(model)}: {'; '.join(problems)}.")
    values = [(slot.variable, slot.to_keras(np.asarray(state_dict[slot.key])).astype(np.float32))
              for slot in slots]
    for variable, value in values:
        variable.assign(value)
    return model


def _stack_matrices(stack):
    """The matrix at each of the stack's positions (a tied stack repeats its one kernel)."""
    kernels = [keras.ops.convert_to_numpy(kernel) for kernel in stack.kernels]
    if stack.tying == "none":
        return kernels
    return [kernels[0].T if stack.tying == "transpose" and i % 2 else kernels[0]
            for i in range(stack.depth)]


@irmae_export("irmae_keras.official.official_state_dict")
def official_state_dict(model):
    """The state_dict of the official `model.AE` that computes what `model` computes.

    The inverse of `load_official_weights`. A tied stack is written as its l matrices,
    a folded stack as its one matrix (l = 1) or none (absorbed: l = 0); AE+L1/L2 are
    AEs (the penalty only acts in training).

    Args:
        model: `Autoencoder` of the shapes, mnist or celeb_a architecture, tanh output
            (sigmoid for a VAE), no activation inside the stack.

    Returns:
        An `OrderedDict` of official key → float32 numpy array.

    Raises:
        ValueError: a model the official code cannot express (one line).
    """
    slots = _slots(model)
    last = model.decoder_network.layers[-1]
    activation = keras.activations.serialize(last.activation) if hasattr(last, "activation") else None
    wanted = "sigmoid" if model.variant == "vae" else "tanh"
    if activation != wanted:
        raise ValueError(f"the model's decoder ends in {activation!r}; the official "
                         f"{model.variant} decoder ends in {wanted!r}.")
    state = collections.OrderedDict(
        (slot.key, np.ascontiguousarray(slot.to_torch(keras.ops.convert_to_numpy(slot.variable)),
                                        dtype=np.float32))
        for slot in slots)
    stack = model.linear_stack
    if stack is not None:
        if stack.activation is not None:
            raise ValueError("the model's stack has an activation between its matrices; the "
                             "official MLP is linear.")
        for i, matrix in enumerate(_stack_matrices(stack)):
            state[STACK_KEY.format(i)] = np.ascontiguousarray(matrix.T, dtype=np.float32)
    return state
