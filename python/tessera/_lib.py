"""_lib.py: finds and loads libtessera, declares the C prototypes (ctypes).

Search order (the first that loads wins; docs/python.md):
  1. $TESSERA_LIBRARY: the path of the shared library itself.
  2. A copy bundled next to this package (tessera/libtessera.so*).
  3. The build tree: the one recorded by CMake in _build_paths.py when the
     package sits in a Tessera checkout or was installed from one, and
     ../../build/ relative to this file (running from the source tree).
  4. The installed library: `pkg-config --variable=libdir tessera`
     (PKG_CONFIG_PATH is honoured), the install prefix recorded by CMake,
     then the dynamic loader's standard paths (libtessera.so.0).
"""
import ctypes
import ctypes.util
import os
import subprocess

_HERE = os.path.dirname(os.path.abspath(__file__))
_NAMES = ("libtessera.so.0", "libtessera.so", "libtessera.dylib")


def _candidates():
    env = os.environ.get("TESSERA_LIBRARY")
    if env:
        yield "$TESSERA_LIBRARY", env
        return  # an explicit choice: do not fall back silently to another copy
    for n in _NAMES:
        yield "bundled", os.path.join(_HERE, n)
    try:
        from . import _build_paths  # written by CMake at configure time (not in git)
        for n in _NAMES:
            yield "build tree (CMake)", os.path.join(_build_paths.BUILD_DIR, n)
    except ImportError:
        _build_paths = None
    for n in _NAMES:
        yield "source tree", os.path.join(_HERE, "..", "..", "build", n)
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "tessera"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        if libdir:
            for n in _NAMES:
                yield "pkg-config", os.path.join(libdir, n)
    except (OSError, subprocess.SubprocessError):
        pass
    if _build_paths is not None:
        for n in _NAMES:
            yield "install prefix (CMake)", os.path.join(_build_paths.INSTALL_LIBDIR, n)
    found = ctypes.util.find_library("tessera")
    for n in ((found,) if found else ()) + _NAMES:
        yield "loader paths", n


def _load():
    tried = []
    for where, path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append("%s: %s (absent)" % (where, path))
            continue
        try:
            lib = ctypes.CDLL(path)
            return lib, os.path.realpath(path) if os.sep in path else path
        except OSError as e:
            tried.append("%s: %s (%s)" % (where, path, e))
    raise ImportError("tessera: libtessera not found; build it with `make` or set TESSERA_LIBRARY. Tried:\n  "
                      + "\n  ".join(tried))


lib, path = _load()

c_int, c_int64, c_double, c_char_p, c_void_p, c_size_t = (ctypes.c_int, ctypes.c_int64, ctypes.c_double,
                                                          ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)
P = ctypes.POINTER
MAX_RANK = 4


class ParamInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("is_tensor", c_int), ("dtype", c_int), ("rank", c_int),
                ("size_names", c_char_p * MAX_RANK), ("fixed_sizes", c_int64 * MAX_RANK)]


class TunableInfo(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("min", c_int64), ("max", c_int64), ("def_", c_int64)]


class Arg(ctypes.Structure):
    _fields_ = [("tensor", c_void_p), ("f", c_double), ("i", c_int64)]


class TuneProgress(ctypes.Structure):
    _fields_ = [("done", c_int), ("space", c_int), ("elapsed_s", c_double), ("budget_s", c_double),
                ("config", c_char_p), ("outcome", c_int), ("ms", c_double), ("best_config", c_char_p),
                ("best_ms", c_double), ("default_ms", c_double)]


PROGRESS_FN = ctypes.CFUNCTYPE(None, P(TuneProgress), c_void_p)


class TuneOptions(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("effort", c_int), ("budget_s", c_double), ("strategy", c_int),
                ("seed", ctypes.c_uint64), ("progress", PROGRESS_FN), ("user", c_void_p), ("repeats", c_int),
                ("use_db", c_int), ("force", c_int), ("max_evals", c_int), ("candidate_timeout_s", c_double),
                ("tol_scale", c_double), ("reduce_size", c_char_p), ("int_bound", c_void_p), ("scalar", c_void_p)]


class TuneReport(ctypes.Structure):
    _fields_ = [("best", c_void_p), ("best_config", ctypes.c_char * 256), ("best_ms", c_double),
                ("default_ms", c_double), ("speedup", c_double), ("from_db", c_int), ("stored", c_int),
                ("strategy", ctypes.c_char * 16), ("fingerprint", ctypes.c_char * 512), ("shape", ctypes.c_char * 256),
                ("space", c_int64), ("tried", c_int), ("ok", c_int), ("pruned", c_int), ("failed_compile", c_int),
                ("rejected_wrong", c_int), ("timed_out", c_int), ("tuning_s", c_double), ("reference_s", c_double),
                ("budget_exhausted", c_int), ("ncandidates", c_int), ("candidates", c_void_p)]


def _proto(name, res, *args):
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f


S = c_int  # ts_status
_proto("ts_status_name", c_char_p, c_int)
_proto("ts_strerror", c_char_p, c_int)
_proto("ts_last_error", c_char_p)
_proto("ts_clear_error", None)
_proto("ts_dtype_name", c_char_p, c_int)
_proto("ts_dtype_size", c_size_t, c_int)
_proto("ts_kernel_parse", S, c_char_p, c_char_p, P(c_void_p))
_proto("ts_kernel_destroy", None, c_void_p)
_proto("ts_kernel_name", c_char_p, c_void_p)
_proto("ts_kernel_print", c_void_p, c_void_p)
_proto("ts_kernel_param_count", c_int, c_void_p)
_proto("ts_kernel_param", S, c_void_p, c_int, P(ParamInfo))
_proto("ts_kernel_tunable_count", c_int, c_void_p)
_proto("ts_kernel_tunable", S, c_void_p, c_int, P(TunableInfo))
_proto("ts_config_create", S, P(c_void_p))
_proto("ts_config_destroy", None, c_void_p)
_proto("ts_config_set", S, c_void_p, c_char_p, c_int64)
_proto("ts_config_parse", S, c_char_p, P(c_void_p))
_proto("ts_config_check", S, c_void_p, c_void_p)
_proto("ts_config_format", c_void_p, c_void_p)
_proto("ts_backend_count", c_int)
_proto("ts_backend_name", c_char_p, c_int)
_proto("ts_backend_available", c_int, c_char_p, P(c_char_p))
_proto("ts_backend_device_count", c_int, c_char_p)
_proto("ts_context_create", S, c_char_p, c_int, P(c_void_p))
_proto("ts_context_destroy", None, c_void_p)
_proto("ts_context_backend", c_char_p, c_void_p)
_proto("ts_context_device_name", c_char_p, c_void_p)
_proto("ts_context_fingerprint", c_char_p, c_void_p, P(ctypes.c_uint64))
_proto("ts_device_supports_dtype", c_int, c_void_p, c_int)
_proto("ts_tensor_create", S, c_void_p, c_int, c_int, P(c_int64), P(c_void_p))
_proto("ts_tensor_view", S, c_void_p, c_int, P(c_int64), P(c_int64), c_int64, P(c_void_p))
_proto("ts_tensor_destroy", None, c_void_p)
_proto("ts_tensor_dtype", c_int, c_void_p)
_proto("ts_tensor_rank", c_int, c_void_p)
_proto("ts_tensor_shape", P(c_int64), c_void_p)
_proto("ts_tensor_strides", P(c_int64), c_void_p)
_proto("ts_tensor_write", S, c_void_p, c_void_p, c_size_t)
_proto("ts_tensor_read", S, c_void_p, c_void_p, c_size_t)
_proto("ts_tensor_context", c_void_p, c_void_p)
_proto("ts_launch", S, c_void_p, c_void_p, c_void_p, P(Arg), c_int, P(c_double))
_proto("ts_tune", S, c_void_p, c_void_p, P(c_char_p), P(c_int64), c_int, P(TuneOptions), P(P(TuneReport)))
_proto("ts_tune_report_destroy", None, P(TuneReport))
# Safetensors (formats/tessera_safetensors.h, public API only)
_proto("ts_st_collection_open", S, c_char_p, P(c_void_p))
_proto("ts_st_collection_close", None, c_void_p)
_proto("ts_st_upload_collection", S, c_void_p, c_void_p, c_void_p, P(c_void_p))
_proto("ts_st_tensor_set_destroy", None, c_void_p)
_proto("ts_st_tensor_set_count", c_size_t, c_void_p)
_proto("ts_st_tensor_set_name", c_char_p, c_void_p, c_size_t)
_proto("ts_st_tensor_set_tensor", c_void_p, c_void_p, c_size_t)
_proto("ts_st_dtype_from_ts", S, c_int, P(c_int))
_proto("ts_st_writer_create", S, P(c_void_p))
_proto("ts_st_writer_destroy", None, c_void_p)
_proto("ts_st_writer_add", S, c_void_p, c_char_p, c_int, c_int, P(ctypes.c_uint64), c_void_p, c_size_t)
_proto("ts_st_writer_add_tensor", S, c_void_p, c_char_p, c_void_p, c_int, c_int, P(ctypes.c_uint64))
_proto("ts_st_writer_metadata", S, c_void_p, c_char_p, c_char_p)
_proto("ts_st_writer_save", S, c_void_p, c_char_p)

libc = ctypes.CDLL(None)
libc.free.argtypes = [c_void_p]
libc.free.restype = None


def take_string(p):
    """A malloc'd char * from the library as str; frees it."""
    if not p:
        return None
    try:
        return ctypes.string_at(p).decode("utf-8", "replace")
    finally:
        libc.free(p)
