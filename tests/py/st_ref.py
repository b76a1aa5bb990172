#!/usr/bin/env python3
"""st_ref.py: the reference implementation (huggingface safetensors) as seen
by the C tests of formats/ (tests/test_safetensors_xcheck.c).

  st_ref.py write OUT        writes OUT with the reference: one tensor of every
                             dtype its writer takes, plus metadata; prints what
                             the reference reads back from OUT as JSON
  st_ref.py read FILE        prints what the reference reads from FILE as JSON
  st_ref.py serialize SPEC OUT
                             writes OUT with the reference from SPEC (JSON:
                             {"metadata": {..} or null, "tensors": [{"name",
                             "dtype" (file name, e.g. "BF16"), "shape", "hex"}]})

JSON printed: {"metadata": {...} or null, "tensors": [{"name", "dtype",
"shape", "hex"}]} sorted by name. Exit 77 when the module is missing."""
import ctypes
import json
import sys

try:
    import safetensors
except ImportError:
    print("the python module safetensors is not installed", file=sys.stderr)
    sys.exit(77)

# file dtype -> the reference writer's dtype name, and elements per byte of storage for packed ones
WRITER_DTYPES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
    "F16": "float16", "BF16": "bfloat16", "I32": "int32", "U32": "uint32", "F32": "float32",
    "C64": "complex64", "F64": "float64", "I64": "int64", "U64": "uint64",
    "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3fn", "F8_E8M0": "float8_e8m0fnu",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "F4": "float4_e2m1fn_x2",
}
BITS = {"BOOL": 8, "U8": 8, "I8": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
        "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
        "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


def dump(data):
    tensors = safetensors.deserialize(data)
    out = []
    for name, t in sorted(tensors, key=lambda x: x[0]):
        out.append({"name": name, "dtype": t["dtype"], "shape": list(t["shape"]), "hex": bytes(t["data"]).hex()})
    meta = None
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    if "__metadata__" in header:
        meta = header["__metadata__"]
    return {"metadata": meta, "tensors": out}


def serialize(spec_tensors, metadata, out_path):
    keep = []
    specs = {}
    for t in spec_tensors:
        raw = bytes.fromhex(t["hex"])
        buf = ctypes.create_string_buffer(raw, max(len(raw), 1))
        keep.append(buf)
        shape = list(t["shape"])
        if t["dtype"] == "F4":  # the writer takes the storage shape (two values per byte) and doubles the last dim
            shape[-1] //= 2
        specs[t["name"]] = safetensors.TensorSpec(dtype=WRITER_DTYPES[t["dtype"]], shape=shape,
                                                  data_ptr=ctypes.addressof(buf), data_len=len(raw))
    safetensors.serialize_file(specs, out_path, metadata)


def main():
    cmd = sys.argv[1]
    if cmd == "write":
        tensors = []
        for i, (dt, _) in enumerate(sorted(WRITER_DTYPES.items())):
            shape = [2, 3, 4] if dt != "F4" else [3, 4]
            n = 1
            for d in shape:
                n *= d
            nbytes = n * BITS[dt] // 8
            raw = bytes(((i * 131 + k * 7 + (k >> 3)) & 0xFF) for k in range(nbytes))
            if dt == "BOOL":
                raw = bytes(b & 1 for b in raw)
            tensors.append({"name": "t_" + dt.lower(), "dtype": dt, "shape": shape, "hex": raw.hex()})
        tensors.append({"name": "scalar", "dtype": "F64", "shape": [], "hex": (b"\x00" * 6 + b"\xf0\x3f").hex()})
        tensors.append({"name": "empty", "dtype": "F32", "shape": [0, 5], "hex": ""})
        serialize(tensors, {"format": "pt", "note": "written by the reference"}, sys.argv[2])
        with open(sys.argv[2], "rb") as f:
            print(json.dumps(dump(f.read())))
    elif cmd == "read":
        with open(sys.argv[2], "rb") as f:
            print(json.dumps(dump(f.read())))
    elif cmd == "serialize":
        with open(sys.argv[2]) as f:
            spec = json.load(f)
        serialize(spec["tensors"], spec.get("metadata"), sys.argv[3])
    else:
        print("unknown command " + cmd, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
