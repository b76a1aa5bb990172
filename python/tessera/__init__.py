"""Tessera from Python: tile-language kernels run on numpy arrays and device tensors.

    import numpy as np, tessera
    k = tessera.kernel('''
    kernel axpy(x: f32[N], y: f32[N], a: f32) {
      tunable B = 64 in 16..1024
      grid t in tile(N, B)
      store(y[t], a * load(x[t]) + load(y[t]))
    }''')
    x, y = np.ones(1000, np.float32), np.zeros(1000, np.float32)
    k(x, y, 2.5, backend="opencl")        # y is written in place

Map: contexts (one per backend/device, cached) | dtypes | Tensor (device
tensors, DLPack) | Kernel (parse, argument binding, launch) | devices,
backends, tune. A ctypes layer over libtessera (_lib.py: where it is found);
every C error becomes a TesseraError subclass (_errors.py). docs/python.md.
"""
import atexit
import ctypes
import os
import re
import sys

import numpy as np

from . import _lib
from ._errors import CLASSES as _CLASSES, TesseraError, check as _check, bad_args as _bad_args, error as _error

globals().update(_CLASSES)  # ParseError, BadArgsError, UnavailableError, ...

__version__ = "0.1.0"
library_path = _lib.path
L = _lib.lib

__all__ = ["kernel", "tensor", "empty", "zeros", "from_dlpack", "devices", "backends", "tune", "Kernel", "Tensor",
           "TesseraError", "library_path"] + sorted(_CLASSES)

# At exit, objects are finalized in no particular order (a tensor after its
# context); the process is ending, so native handles are left to the OS then.
_ALIVE = [True]
atexit.register(_ALIVE.__setitem__, 0, False)

# ---------------------------------------------------------------- dtypes

_TS_TO_NP = {0: np.dtype(np.float32), 1: np.dtype(np.float16), 3: np.dtype(np.float64), 4: np.dtype(np.int32),
             5: np.dtype(np.int64), 6: np.dtype(np.uint8), 7: np.dtype(np.bool_)}
_NP_TO_TS = {v: k for k, v in _TS_TO_NP.items()}
_TS_NAME = {i: L.ts_dtype_name(i).decode() for i in range(8)}
_TS_BY_NAME = {v: k for k, v in _TS_NAME.items()}
_FLOAT = {0, 1, 2, 3}


def _ts_dtype(dtype):
    """A ts_dtype from a name ("f32"), a numpy dtype or type."""
    if isinstance(dtype, str) and dtype in _TS_BY_NAME:
        return _TS_BY_NAME[dtype]
    if isinstance(dtype, int) and not isinstance(dtype, bool) and dtype in _TS_NAME:
        return dtype  # already a ts_dtype
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise _error(-1, "unknown dtype %r" % (dtype,)) from None
    if d not in _NP_TO_TS:
        raise _error(-10, "dtype %s has no Tessera equivalent" % d)
    return _NP_TO_TS[d]


def _np_dtype(ts):
    if ts not in _TS_TO_NP:
        raise _error(-10, "dtype %s has no numpy equivalent (use f32 on the Python side)" % _TS_NAME.get(ts, ts))
    return _TS_TO_NP[ts]


# ---------------------------------------------------------------- contexts


class _Context:
    """One opened device; owns the module cache of every kernel launched on it."""

    def __init__(self, backend, device):
        h = ctypes.c_void_p()
        _check(L.ts_context_create(backend.encode() if backend else None, device, ctypes.byref(h)))
        self.h = h
        self.backend = L.ts_context_backend(h).decode()
        self.device = device
        self.name = L.ts_context_device_name(h).decode()
        self.fingerprint = L.ts_context_fingerprint(h, None).decode()
        self._destroy = L.ts_context_destroy

    def __del__(self, _alive=_ALIVE):
        if _alive[0] and getattr(self, "h", None):
            self._destroy(self.h)
            self.h = None


_contexts = {}


def _context(backend=None, device=0):
    if backend in (None, "auto"):
        backend = os.environ.get("TESSERA_BACKEND") or None
    key = (backend, device)
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = _Context(backend, device)
        _contexts[key] = ctx
        _contexts[(ctx.backend, device)] = ctx
    return ctx


def backends():
    """Names of the backends with at least one usable device (always includes "ref")."""
    names = [L.ts_backend_name(i).decode() for i in range(L.ts_backend_count())]
    return [n for n in names if L.ts_backend_available(n.encode(), None)]


def devices():
    """Every registered backend and its devices: dicts with backend, index, name,
    fingerprint, available, and why (the reason when not available)."""
    out = []
    for i in range(L.ts_backend_count()):
        n = L.ts_backend_name(i).decode()
        why = ctypes.c_char_p()
        if not L.ts_backend_available(n.encode(), ctypes.byref(why)):
            out.append({"backend": n, "index": None, "name": None, "fingerprint": None, "available": False,
                        "why": why.value.decode("utf-8", "replace") if why.value else "not available"})
            continue
        for d in range(L.ts_backend_device_count(n.encode())):
            try:
                c = _context(n, d)
                out.append({"backend": n, "index": d, "name": c.name, "fingerprint": c.fingerprint,
                            "available": True, "why": None})
            except TesseraError as e:
                out.append({"backend": n, "index": d, "name": None, "fingerprint": None, "available": False,
                            "why": e.message})
    return out


# ---------------------------------------------------------------- device tensors

_kDLCPU = 1


class Tensor:
    """A tensor on a device (owns a ts_tensor; views keep the storage alive).

    .shape, .dtype (numpy), .backend, .device, .numpy() (a host copy),
    np.asarray(t), and the DLPack protocol: the device memory is reached only
    through ts_tensor_read, so __dlpack__ exports a host copy (kDLCPU)."""

    __slots__ = ("_h", "_ctx", "shape", "ts_dtype", "_destroy", "__weakref__")

    def __init__(self, handle, ctx):
        self._h = handle
        self._ctx = ctx
        self._destroy = L.ts_tensor_destroy
        rank = L.ts_tensor_rank(handle)
        shp = L.ts_tensor_shape(handle)
        self.shape = tuple(shp[i] for i in range(rank))
        self.ts_dtype = L.ts_tensor_dtype(handle)

    def __del__(self, _alive=_ALIVE):
        if _alive[0] and getattr(self, "_h", None):
            self._destroy(self._h)
            self._h = None

    @property
    def dtype(self):
        return _np_dtype(self.ts_dtype)

    @property
    def backend(self):
        return self._ctx.backend

    @property
    def device(self):
        return self._ctx.device

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def strides(self):
        """Strides in elements."""
        s = L.ts_tensor_strides(self._h)
        return tuple(s[i] for i in range(len(self.shape)))

    def __repr__(self):
        return "tessera.Tensor(shape=%s, dtype=%s, backend=%s)" % (self.shape, _TS_NAME[self.ts_dtype], self.backend)

    def numpy(self):
        """A new numpy array holding the tensor's elements (row-major)."""
        a = np.empty(self.shape, _np_dtype(self.ts_dtype))
        _check(L.ts_tensor_read(self._h, a.ctypes.data, a.nbytes))
        return a

    def write(self, array):
        """Copies `array` (same shape; cast to the tensor's dtype) into the tensor."""
        a = np.ascontiguousarray(array, dtype=_np_dtype(self.ts_dtype))
        if a.shape != self.shape:
            raise _bad_args("write: array shape %s differs from the tensor's %s" % (a.shape, self.shape))
        _check(L.ts_tensor_write(self._h, a.ctypes.data, a.nbytes))

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        if copy is False:
            raise BufferError("tessera: device memory is not host-addressable through the C API; "
                              "a zero-copy export is impossible (use copy=None or True)")
        kw = {}
        if max_version is not None:
            kw["max_version"] = max_version
        if dl_device is not None:
            kw["dl_device"] = dl_device
        return self.numpy().__dlpack__(**kw)

    def __dlpack_device__(self):
        return (_kDLCPU, 0)


def _host_array(obj):
    """A numpy array sharing obj's memory where possible (numpy, DLPack producers, buffers)."""
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "__dlpack__") and not isinstance(obj, Tensor):
        try:
            return np.from_dlpack(obj)  # zero-copy for CPU memory (PyTorch CPU tensors, ...)
        except (BufferError, RuntimeError, TypeError, ValueError):
            pass
    return None


def tensor(array, backend=None, device=0, dtype=None):
    """Copies a numpy array (or any DLPack / array-like object) onto a device."""
    if isinstance(array, Tensor):
        array = array.numpy()
    a = _host_array(array)
    a = np.asarray(array if a is None else a)
    if dtype is not None:
        a = a.astype(_np_dtype(_ts_dtype(dtype)), copy=False)
    ts = _ts_dtype(a.dtype)
    a = np.ascontiguousarray(a)
    t = empty(a.shape if a.ndim else (1,), ts, backend=backend, device=device)
    _check(L.ts_tensor_write(t._h, a.ctypes.data, a.nbytes))
    return t


def empty(shape, dtype="f32", backend=None, device=0):
    """A new device tensor (contents undefined)."""
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    return _empty_on(_context(backend, device), shape, _ts_dtype(dtype))


def _empty_on(ctx, shape, ts):
    h = ctypes.c_void_p()
    _check(L.ts_tensor_create(ctx.h, ts, len(shape), (ctypes.c_int64 * len(shape))(*shape),
                              ctypes.byref(h)))
    return Tensor(h.value, ctx)


def zeros(shape, dtype="f32", backend=None, device=0):
    t = empty(shape, dtype, backend, device)
    t.write(np.zeros(t.shape, _np_dtype(t.ts_dtype)))
    return t


def from_dlpack(obj, backend=None, device=0):
    """A device tensor from any DLPack producer (numpy, PyTorch, ...): the
    producer's memory is read without an intermediate copy (np.from_dlpack) and
    uploaded once. A tessera.Tensor on the requested backend is returned as is."""
    if isinstance(obj, Tensor) and (backend is None or backend == obj.backend) and device == obj.device:
        return obj
    if not hasattr(obj, "__dlpack__"):
        raise _bad_args("from_dlpack: %s does not implement __dlpack__" % type(obj).__name__)
    return tensor(np.from_dlpack(obj), backend=backend, device=device)


# ---------------------------------------------------------------- kernels

_STORE_RE = re.compile(r"\b(?:store|atomic_add)\(\s*([A-Za-z_]\w*)\s*\[")


class _Param:
    __slots__ = ("name", "is_tensor", "dtype", "rank", "np_dtype", "is_float", "written")


class Kernel:
    """A parsed kernel. Call it with one argument per parameter (positional, in
    order, or by keyword): numpy arrays or tessera.Tensors for tensors, Python
    numbers for scalars. Keywords: backend, device, config (dict or "K=V,...";
    None: the tuning database, else the defaults), timing (return device ms)."""

    def __init__(self, handle):
        self._h = handle
        self._destroy = L.ts_kernel_destroy
        self.name = L.ts_kernel_name(handle).decode()
        self.source = _lib.take_string(L.ts_kernel_print(handle))
        written = set(_STORE_RE.findall(self.source))
        self.params = []
        info = _lib.ParamInfo()
        for i in range(L.ts_kernel_param_count(handle)):
            _check(L.ts_kernel_param(handle, i, ctypes.byref(info)))
            p = _Param()
            p.name, p.is_tensor, p.dtype, p.rank = info.name.decode(), bool(info.is_tensor), info.dtype, info.rank
            p.np_dtype = _TS_TO_NP.get(p.dtype)
            p.is_float = p.dtype in _FLOAT
            p.written = p.name in written
            self.params.append(p)
        self._index = {p.name: i for i, p in enumerate(self.params)}
        self.tunables = {}
        ti = _lib.TunableInfo()
        for i in range(L.ts_kernel_tunable_count(handle)):
            _check(L.ts_kernel_tunable(handle, i, ctypes.byref(ti)))
            self.tunables[ti.name.decode()] = (ti.min, ti.max, ti.def_)
        self._nargs = len(self.params)
        self._argtype = _lib.Arg * self._nargs
        self._configs = {}

    def __del__(self, _alive=_ALIVE):
        if _alive[0] and getattr(self, "_h", None):
            self._destroy(self._h)
            self._h = None

    def __repr__(self):
        return "tessera.Kernel(%s(%s))" % (self.name, ", ".join(p.name for p in self.params))

    def __str__(self):
        return self.source

    def _config(self, config):
        if config is None:
            return None
        key = config if isinstance(config, str) else tuple(sorted(config.items()))
        c = self._configs.get(key)
        if c is None:
            h = ctypes.c_void_p()
            if isinstance(config, str):
                _check(L.ts_config_parse(config.encode(), ctypes.byref(h)))
            else:
                _check(L.ts_config_create(ctypes.byref(h)))
                c = _Config(h)
                for k, v in config.items():
                    _check(L.ts_config_set(h, str(k).encode(), int(v)))
            c = c or _Config(h)
            _check(L.ts_config_check(h, self._h))
            self._configs[key] = c
        return c.h

    def _bind(self, args, kwargs):
        if len(args) > self._nargs:
            raise _bad_args("%s takes %d arguments (%s), got %d" % (self.name, self._nargs,
                                                                    ", ".join(p.name for p in self.params), len(args)))
        if not kwargs:
            if len(args) != self._nargs:
                raise _bad_args("%s: missing argument '%s'" % (self.name, self.params[len(args)].name))
            return args
        vals = list(args) + [_MISSING] * (self._nargs - len(args))
        for k, v in kwargs.items():
            i = self._index.get(k)
            if i is None:
                raise _bad_args("%s has no parameter '%s'" % (self.name, k))
            if vals[i] is not _MISSING:
                raise _bad_args("%s: parameter '%s' given twice" % (self.name, k))
            vals[i] = v
        for i, v in enumerate(vals):
            if v is _MISSING:
                raise _bad_args("%s: missing argument '%s'" % (self.name, self.params[i].name))
        return vals

    def __call__(self, *args, backend=None, device=0, config=None, timing=False, **kwargs):
        vals = args if not kwargs and len(args) == self._nargs else self._bind(args, kwargs)
        ctx = None
        if backend is None:
            for v in vals:
                if type(v) is Tensor:
                    ctx = v._ctx  # the backend of the first device tensor
                    break
        if ctx is None:
            ctx = _context(backend, device)
        cargs = self._argtype()
        staged = []  # [array, address of its span, storage handle, view handle, write back?] per host array
        seen = {}
        try:
            for i, (p, v) in enumerate(zip(self.params, vals)):
                a = cargs[i]
                if not p.is_tensor:
                    if isinstance(v, (Tensor, np.ndarray)) and getattr(v, "ndim", 1) != 0:
                        raise _bad_args("%s: parameter '%s' is a scalar, got an array" % (self.name, p.name))
                    try:
                        if p.is_float:
                            a.f = float(v)
                        elif isinstance(v, (float, np.floating)) and not float(v).is_integer():
                            raise ValueError  # no silent truncation of 2.5 to an integer scalar
                        else:
                            a.i = int(v)
                    except (TypeError, ValueError):
                        raise _bad_args("%s: parameter '%s' is a %s scalar, got %s" % (
                            self.name, p.name, _TS_NAME[p.dtype], type(v).__name__)) from None
                    continue
                if type(v) is Tensor:
                    if v._ctx is not ctx:
                        raise _bad_args("%s: tensor '%s' lives on %s:%d, the launch is on %s:%d" % (
                            self.name, p.name, v.backend, v.device, ctx.backend, ctx.device))
                    if v.ts_dtype != p.dtype:
                        raise _error(-5, "%s: tensor '%s' is %s, the parameter is %s" % (
                            self.name, p.name, _TS_NAME[v.ts_dtype], _TS_NAME[p.dtype]))
                    a.tensor = v._h
                    continue
                arr = _host_array(v)
                if arr is None:
                    raise _bad_args("%s: parameter '%s' takes a numpy array or tessera.Tensor, got %s" % (
                        self.name, p.name, type(v).__name__))
                # The same array passed twice (y = f(y, ...)) is one device tensor.
                key = (arr.ctypes.data, arr.shape, arr.strides, arr.dtype.str)
                entry = seen.get(key)
                if entry is None:
                    entry = seen[key] = self._stage(ctx, p, arr, staged)
                elif p.written:
                    entry[4] = True
                a.tensor = entry[3]
            ms = ctypes.c_double()
            _check(L.ts_launch(ctx.h, self._h, self._config(config), cargs, self._nargs,
                               ctypes.byref(ms) if timing else None))
            for arr, addr, store, _view, write_back in staged:
                if write_back:
                    # The whole span comes back: the elements between the view's own
                    # were uploaded with it and are unchanged (stores are masked to the view).
                    _check(L.ts_tensor_read(store, addr, _span_bytes(arr)))
        finally:
            for e in staged:
                L.ts_tensor_destroy(e[3])
                L.ts_tensor_destroy(e[2])
        return ms.value if timing else None

    def _stage(self, ctx, p, arr, staged):
        """Uploads the memory span a host array covers and views it with the array's strides."""
        if arr.dtype != p.np_dtype:
            raise _error(-5, "%s: array '%s' is %s, the parameter is %s (no implicit casts: outputs are written "
                         "in place)" % (self.name, p.name, arr.dtype, _TS_NAME[p.dtype]))
        if arr.ndim != p.rank:
            raise _error(-21, "%s: array '%s' has rank %d, the parameter has rank %d" % (
                self.name, p.name, arr.ndim, p.rank))
        if p.written and not arr.flags.writeable:
            raise _bad_args("%s: '%s' is written by the kernel but the array is read-only" % (self.name, p.name))
        isz = arr.itemsize
        if arr.size == 0 or any(s % isz for s in arr.strides):
            raise _bad_args("%s: array '%s' has no elements, or strides %s that are not a multiple of its item "
                            "size" % (self.name, p.name, arr.strides))
        lo = sum((n - 1) * s for n, s in zip(arr.shape, arr.strides) if s < 0)
        nbytes = _span_bytes(arr)
        addr = arr.ctypes.data + lo
        h = ctypes.c_void_p()
        n = ctypes.c_int64(nbytes // isz)
        _check(L.ts_tensor_create(ctx.h, p.dtype, 1, ctypes.byref(n), ctypes.byref(h)))
        entry = [arr, addr, h.value, None, p.written]
        staged.append(entry)
        _check(L.ts_tensor_write(entry[2], addr, nbytes))
        rank = arr.ndim
        v = ctypes.c_void_p()
        _check(L.ts_tensor_view(entry[2], rank, (ctypes.c_int64 * rank)(*arr.shape),
                                (ctypes.c_int64 * rank)(*[s // isz for s in arr.strides]), -lo // isz, ctypes.byref(v)))
        entry[3] = v.value
        return entry


def _span_bytes(arr):
    """Bytes from the lowest to the highest element of a strided array."""
    return sum((n - 1) * abs(s) for n, s in zip(arr.shape, arr.strides)) + arr.itemsize


class _Config:
    def __init__(self, h):
        self.h = h
        self._destroy = L.ts_config_destroy

    def __del__(self, _alive=_ALIVE):
        if _alive[0] and getattr(self, "h", None):
            self._destroy(self.h)
            self.h = None


_MISSING = object()


def kernel(text=None, path=None):
    """Parses the tile language (docs/language.md) from `text`, or from the file at `path`.
    Errors raise ParseError (or another TesseraError) with .line and .column."""
    if (text is None) == (path is None):
        raise _error(-1, "kernel: give exactly one of text or path=")
    if path is not None:
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise _error(-14, "%s: %s" % (path, e.strerror)) from None
        filename = path
    else:
        filename = "<string>"
    h = ctypes.c_void_p()
    _check(L.ts_kernel_parse(text.encode("utf-8"), filename.encode(), ctypes.byref(h)))
    return Kernel(h.value)


# ---------------------------------------------------------------- tuning

_EFFORT = {"none": 0, "quick": 1, "full": 2}


def tune(k, shapes, backend=None, device=0, effort="quick", budget_s=0.0, max_evals=0, force=False,
         progress=True):
    """Tunes kernel `k` at `shapes` ({"M": 1000, ...}: every size symbol) on a
    device and stores the best verified config in the tuning database that
    the C library and `tessera tune` share. Prints a progress line to stderr
    (progress=False: silent). Returns a dict: best_config, best_ms,
    default_ms, speedup, from_db, stored, tried, fingerprint."""
    if effort not in _EFFORT:
        raise _error(-1, "tune: effort is one of %s" % ", ".join(_EFFORT))
    ctx = _context(backend, device)
    names = (ctypes.c_char_p * len(shapes))(*(str(n).encode() for n in shapes))
    values = (ctypes.c_int64 * len(shapes))(*(int(v) for v in shapes.values()))
    opts = _lib.TuneOptions(size=ctypes.sizeof(_lib.TuneOptions), effort=_EFFORT[effort], budget_s=budget_s,
                            strategy=0, seed=1, use_db=1, force=int(force), max_evals=max_evals)

    def show(pp, user):
        p = pp.contents
        best = ("best %s %.3f ms" % (p.best_config.decode() or "defaults", p.best_ms)) if p.best_ms > 0 else "no best yet"
        sys.stderr.write("\rtune %s on %s: %d/%s candidates, %.1f/%.0f s, %s   " % (
            k.name, ctx.backend, p.done, p.space if p.space >= 0 else "?", p.elapsed_s, p.budget_s, best))
        sys.stderr.flush()

    cb = _lib.PROGRESS_FN(show) if progress else _lib.PROGRESS_FN()
    opts.progress = cb
    rep = ctypes.POINTER(_lib.TuneReport)()
    s = L.ts_tune(ctx.h, k._h, names, values, len(shapes), ctypes.byref(opts), ctypes.byref(rep))
    if progress:
        sys.stderr.write("\n")
    try:
        if s != 0 and not rep:
            raise _error(s)
        r = rep.contents
        out = {"best_config": r.best_config.decode(), "best_ms": r.best_ms, "default_ms": r.default_ms,
               "speedup": r.speedup, "from_db": bool(r.from_db), "stored": bool(r.stored), "tried": r.tried,
               "fingerprint": r.fingerprint.decode(), "shape": r.shape.decode(), "strategy": r.strategy.decode()}
        if s != 0:
            raise _error(s)
        return out
    finally:
        if rep:
            L.ts_tune_report_destroy(rep)


from . import safetensors  # noqa: E402  (needs Tensor and _context)
