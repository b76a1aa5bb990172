"""tessera.safetensors: Safetensors files through the library's strict reader and canonical writer.

load(path, backend=...) -> {name: tessera.Tensor}: a .safetensors file, a
sharded model.safetensors.index.json or a folder holding one; every header
rule is checked before any data is read (docs/safetensors.md), and a broken
file raises the TesseraError subclass of the rule (StHeaderTooLargeError, ...).
save(path, tensors, metadata=None): tessera.Tensors and numpy arrays.
"""
import ctypes

import numpy as np

from . import _lib
from ._errors import check as _check, bad_args as _bad_args

L = _lib.lib


def load(path, backend=None, device=0):
    """Uploads every tensor of a Safetensors file or sharded checkpoint onto a device."""
    from . import Tensor, _context
    import os
    ctx = _context(backend, device)
    coll = ctypes.c_void_p()
    _check(L.ts_st_collection_open(os.fsencode(path), ctypes.byref(coll)))
    try:
        tset = ctypes.c_void_p()
        _check(L.ts_st_upload_collection(ctx.h, coll, None, ctypes.byref(tset)))
    finally:
        L.ts_st_collection_close(coll)
    out = {}
    try:
        for i in range(L.ts_st_tensor_set_count(tset)):
            name = L.ts_st_tensor_set_name(tset, i).decode("utf-8")
            t = L.ts_st_tensor_set_tensor(tset, i)
            # A view of the set's tensor keeps the storage alive after the set is destroyed.
            rank = L.ts_tensor_rank(t)
            v = ctypes.c_void_p()
            _check(L.ts_tensor_view(t, rank, L.ts_tensor_shape(t), L.ts_tensor_strides(t), 0, ctypes.byref(v)))
            out[name] = Tensor(v.value, ctx)
    finally:
        L.ts_st_tensor_set_destroy(tset)
    return out


def save(path, tensors, metadata=None):
    """Writes {name: tessera.Tensor or numpy array} to `path` (atomically, canonical layout)."""
    from . import Tensor, _ts_dtype
    import os
    w = ctypes.c_void_p()
    _check(L.ts_st_writer_create(ctypes.byref(w)))
    keep = []
    try:
        for name, v in tensors.items():
            bname = str(name).encode("utf-8")
            if isinstance(v, Tensor):
                st = ctypes.c_int()
                _check(L.ts_st_dtype_from_ts(v.ts_dtype, ctypes.byref(st)))
                _check(L.ts_st_writer_add_tensor(w, bname, v._h, st.value, -1, None))
                keep.append(v)
                continue
            a = np.ascontiguousarray(v)
            if not isinstance(v, np.ndarray) and not np.isscalar(v) and a.dtype == object:
                raise _bad_args("save: '%s' is a %s, not a tessera.Tensor or numpy array" % (name, type(v).__name__))
            st = ctypes.c_int()
            _check(L.ts_st_dtype_from_ts(_ts_dtype(a.dtype), ctypes.byref(st)))
            shape = (ctypes.c_uint64 * max(a.ndim, 1))(*a.shape)
            _check(L.ts_st_writer_add(w, bname, st.value, a.ndim, shape, a.ctypes.data, a.nbytes))
        for k, val in (metadata or {}).items():
            _check(L.ts_st_writer_metadata(w, str(k).encode("utf-8"), str(val).encode("utf-8")))
        _check(L.ts_st_writer_save(w, os.fsencode(path)))
    finally:
        L.ts_st_writer_destroy(w)
