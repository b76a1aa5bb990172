#!/usr/bin/env python3
"""make_corpus.py: writes the malformed (and a few valid) Safetensors files of
tests/safetensors/ and their manifest, expected.txt.

Each file breaks exactly one rule. expected.txt has one line per file:
    FILE STATUS REFERENCE
STATUS is the ts_status our reader must return (TS_OK for valid files);
REFERENCE is what the reference implementation (huggingface safetensors)
does with the file: "rejects" or "accepts". The few "accepts" on invalid
files are where we are stricter on purpose (docs/safetensors.md).

Run it from anywhere; it rewrites the corpus next to itself. Deterministic."""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []


def raw(name, status, ref, content):
    cases.append((name, status, ref, content))


def hdr(name, status, ref, header, data=b"", length=None):
    if isinstance(header, str):
        header = header.encode("utf-8")
    n = len(header) if length is None else length
    raw(name, status, ref, struct.pack("<Q", n) + header + data)


def t(dtype, shape, begin, end, extra=""):
    return '{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]%s}' % (dtype, json.dumps(shape).replace(" ", ""), begin, end, extra)


A4 = '{"a":%s}' % t("F32", [1], 0, 4)
D4 = b"\x00\x00\x80\x3f"

# ---- valid files (the reader must accept them, as the reference does)
hdr("valid_single.safetensors", "TS_OK", "accepts", A4, D4)
hdr("valid_scalar.safetensors", "TS_OK", "accepts", '{"s":%s}' % t("I64", [], 0, 8), b"\x07" + b"\x00" * 7)
hdr("valid_empty_tensor.safetensors", "TS_OK", "accepts", '{"e":%s}' % t("F16", [0, 3], 0, 0))
hdr("valid_no_tensors.safetensors", "TS_OK", "accepts", "{}")
hdr("valid_extra_field_ignored.safetensors", "TS_OK", "accepts", '{"a":%s}' % t("F32", [1], 0, 4, ',"quant":{"bits":4}'), D4)
hdr("valid_metadata_null.safetensors", "TS_OK", "accepts", '{"__metadata__":null,"a":%s}' % t("F32", [1], 0, 4), D4)
hdr("valid_trailing_whitespace.safetensors", "TS_OK", "accepts", A4 + " \n\t\r ", D4)
hdr("valid_unaligned.safetensors", "TS_OK", "accepts", '{"b":%s,"a":%s}' % (t("U8", [1], 0, 1), t("F32", [1], 1, 5)), b"\x01" + D4)
hdr("valid_any_order.safetensors", "TS_OK", "accepts", '{"b":%s,"a":%s}' % (t("U8", [4], 4, 8), t("U8", [4], 0, 4)), bytes(range(8)))
hdr("valid_two_empty_same_offset.safetensors", "TS_OK", "accepts", '{"x":%s,"y":%s,"z":%s}' % (t("U8", [0], 0, 0), t("F32", [0, 2], 0, 0), t("U8", [1], 0, 1)), b"\x05")
hdr("valid_f4_even.safetensors", "TS_OK", "accepts", '{"q":%s}' % t("F4", [2, 2], 0, 2), b"\x12\x34")
hdr("valid_f6_four.safetensors", "TS_OK", "accepts", '{"q":%s}' % t("F6_E3M2", [4], 0, 3), b"\x01\x02\x03")
hdr("valid_unicode_name.safetensors", "TS_OK", "accepts", '{"caf\u00e9.\u03c9\\u00e9":%s}' % t("U8", [1], 0, 1), b"\x01")
hdr("valid_escaped_nul_free.safetensors", "TS_OK", "accepts", '{"__metadata__":{"k":"line\\nbreak \\"q\\""},"a":%s}' % t("F32", [1], 0, 4), D4)

# ---- the 8-byte prefix
raw("too_small_empty.safetensors", "TS_ERR_ST_HEADER_TOO_SMALL", "rejects", b"")
raw("too_small_7_bytes.safetensors", "TS_ERR_ST_HEADER_TOO_SMALL", "rejects", b"\x02\x00\x00\x00\x00\x00\x00")
hdr("too_large_limit_plus_one.safetensors", "TS_ERR_ST_HEADER_TOO_LARGE", "rejects", "{}", length=100000001)
hdr("too_large_u64_max.safetensors", "TS_ERR_ST_HEADER_TOO_LARGE", "rejects", "{}", length=2**64 - 1)
hdr("header_length_past_eof.safetensors", "TS_ERR_ST_HEADER_LENGTH", "rejects", "{}", length=100)
hdr("header_length_at_limit_past_eof.safetensors", "TS_ERR_ST_HEADER_LENGTH", "rejects", A4, D4, length=100000000)
hdr("header_length_one_past_eof.safetensors", "TS_ERR_ST_HEADER_LENGTH", "rejects", A4, length=len(A4) + 1)

# ---- the header text
hdr("utf8_invalid_byte.safetensors", "TS_ERR_ST_UTF8", "rejects", b'{"a\xff":' + t("F32", [1], 0, 4).encode() + b"}", D4)
hdr("utf8_overlong.safetensors", "TS_ERR_ST_UTF8", "rejects", b'{"a\xc0\x80":' + t("F32", [1], 0, 4).encode() + b"}", D4)
hdr("utf8_surrogate.safetensors", "TS_ERR_ST_UTF8", "rejects", b'{"a\xed\xa0\x80":' + t("F32", [1], 0, 4).encode() + b"}", D4)
hdr("utf8_truncated_at_end.safetensors", "TS_ERR_ST_UTF8", "rejects", A4.encode() + b"\xe2\x82", D4)
hdr("utf8_above_max.safetensors", "TS_ERR_ST_UTF8", "rejects", b'{"\xf4\x90\x80\x80":' + t("F32", [1], 0, 4).encode() + b"}", D4)
hdr("start_empty_header.safetensors", "TS_ERR_ST_HEADER_START", "rejects", "")
hdr("start_array.safetensors", "TS_ERR_ST_HEADER_START", "rejects", "[]      ")
hdr("start_bom.safetensors", "TS_ERR_ST_HEADER_START", "rejects", "\ufeff{}")
hdr("start_leading_space.safetensors", "TS_ERR_ST_HEADER_START", "accepts", " " + A4, D4)
hdr("start_leading_newline.safetensors", "TS_ERR_ST_HEADER_START", "accepts", "\n" + A4, D4)
hdr("json_unterminated.safetensors", "TS_ERR_ST_JSON", "rejects", '{"a":' + t("F32", [1], 0, 4), D4)
hdr("json_missing_colon.safetensors", "TS_ERR_ST_JSON", "rejects", '{"a" ' + t("F32", [1], 0, 4) + "}", D4)
hdr("json_single_quotes.safetensors", "TS_ERR_ST_JSON", "rejects", "{'a':1}")
hdr("json_lone_surrogate_escape.safetensors", "TS_ERR_ST_JSON", "rejects", '{"a\\ud800":%s}' % t("F32", [1], 0, 4), D4)
hdr("json_bad_escape.safetensors", "TS_ERR_ST_JSON", "rejects", '{"a\\x":%s}' % t("F32", [1], 0, 4), D4)
hdr("json_nan.safetensors", "TS_ERR_ST_JSON", "rejects", '{"a":%s}' % t("F32", [1], 0, 4, ',"x":NaN'), D4)
hdr("json_trailing_comma.safetensors", "TS_ERR_ST_JSON", "rejects", '{"a":%s,}' % t("F32", [1], 0, 4), D4)
hdr("trailing_garbage.safetensors", "TS_ERR_ST_TRAILING", "rejects", A4 + "x", D4)
hdr("trailing_nul_padding.safetensors", "TS_ERR_ST_TRAILING", "rejects", A4 + "\x00\x00\x00", D4)
hdr("trailing_second_object.safetensors", "TS_ERR_ST_TRAILING", "rejects", "{}{}")
hdr("trailing_space_then_garbage.safetensors", "TS_ERR_ST_TRAILING", "rejects", A4 + "   }", D4)
hdr("duplicate_tensor.safetensors", "TS_ERR_ST_DUPLICATE_KEY", "accepts", '{"a":%s,"a":%s}' % (t("F32", [1], 0, 4), t("F32", [1], 0, 4)), D4)
hdr("duplicate_field.safetensors", "TS_ERR_ST_DUPLICATE_KEY", "rejects", '{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', D4)
hdr("duplicate_metadata_key.safetensors", "TS_ERR_ST_DUPLICATE_KEY", "accepts", '{"__metadata__":{"k":"1","k":"2"}}')
hdr("duplicate_metadata_entry.safetensors", "TS_ERR_ST_DUPLICATE_KEY", "rejects", '{"__metadata__":{},"__metadata__":{}}')
hdr("too_deep_extra_field.safetensors", "TS_ERR_ST_TOO_DEEP", "accepts", '{"a":%s}' % t("F32", [1], 0, 4, ',"x":' + "[" * 100 + "]" * 100), D4)
hdr("too_deep_metadata.safetensors", "TS_ERR_ST_TOO_DEEP", "rejects", '{"__metadata__":' + "[" * 5000 + "]" * 5000 + "}")
hdr("too_deep_unbalanced.safetensors", "TS_ERR_ST_TOO_DEEP", "rejects", "{" + '"a":{' * 5000)

# ---- tensor entries
hdr("entry_number.safetensors", "TS_ERR_ST_ENTRY_NOT_OBJECT", "rejects", '{"a":1}')
hdr("entry_list.safetensors", "TS_ERR_ST_ENTRY_NOT_OBJECT", "accepts", '{"a":["F32",[1],[0,4]]}', D4)
hdr("entry_null.safetensors", "TS_ERR_ST_ENTRY_NOT_OBJECT", "rejects", '{"a":null}')
hdr("missing_dtype.safetensors", "TS_ERR_ST_MISSING_DTYPE", "rejects", '{"a":{"shape":[1],"data_offsets":[0,4]}}', D4)
hdr("missing_shape.safetensors", "TS_ERR_ST_MISSING_SHAPE", "rejects", '{"a":{"dtype":"F32","data_offsets":[0,4]}}', D4)
hdr("missing_offsets.safetensors", "TS_ERR_ST_MISSING_OFFSETS", "rejects", '{"a":{"dtype":"F32","shape":[1]}}', D4)
hdr("dtype_lowercase.safetensors", "TS_ERR_ST_UNKNOWN_DTYPE", "rejects", '{"a":%s}' % t("f32", [1], 0, 4), D4)
hdr("dtype_f128.safetensors", "TS_ERR_ST_UNKNOWN_DTYPE", "rejects", '{"a":%s}' % t("F128", [1], 0, 16), D4 * 4)
hdr("dtype_number.safetensors", "TS_ERR_ST_UNKNOWN_DTYPE", "rejects", '{"a":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}', D4)
hdr("dtype_empty.safetensors", "TS_ERR_ST_UNKNOWN_DTYPE", "rejects", '{"a":%s}' % t("", [1], 0, 4), D4)
hdr("shape_negative.safetensors", "TS_ERR_ST_BAD_SHAPE", "rejects", '{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', D4)
hdr("shape_float.safetensors", "TS_ERR_ST_BAD_SHAPE", "rejects", '{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', D4)
hdr("shape_string_dim.safetensors", "TS_ERR_ST_BAD_SHAPE", "rejects", '{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}', D4)
hdr("shape_not_list.safetensors", "TS_ERR_ST_BAD_SHAPE", "rejects", '{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}', D4)
hdr("shape_null_dim.safetensors", "TS_ERR_ST_BAD_SHAPE", "rejects", '{"a":{"dtype":"F32","shape":[null],"data_offsets":[0,4]}}', D4)
hdr("offsets_one.safetensors", "TS_ERR_ST_BAD_OFFSETS", "rejects", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', D4)
hdr("offsets_three.safetensors", "TS_ERR_ST_BAD_OFFSETS", "rejects", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', D4)
hdr("offsets_negative.safetensors", "TS_ERR_ST_BAD_OFFSETS", "rejects", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', D4)
hdr("offsets_string.safetensors", "TS_ERR_ST_BAD_OFFSETS", "rejects", '{"a":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}}', D4)
hdr("offsets_float.safetensors", "TS_ERR_ST_BAD_OFFSETS", "rejects", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4]}}', D4)
hdr("offsets_reversed.safetensors", "TS_ERR_ST_OFFSETS_REVERSED", "rejects", '{"a":%s,"b":%s}' % (t("F32", [0], 4, 0), t("F32", [1], 0, 4)), D4)
hdr("offsets_outside.safetensors", "TS_ERR_ST_OFFSETS_OUTSIDE", "rejects", '{"a":%s}' % t("F32", [2], 0, 8), D4)
hdr("offsets_outside_huge.safetensors", "TS_ERR_ST_OFFSETS_OUTSIDE", "rejects", '{"a":%s}' % t("U8", [2**40], 0, 2**40), D4)
hdr("size_mismatch_short.safetensors", "TS_ERR_ST_SIZE_MISMATCH", "rejects", '{"a":%s}' % t("F32", [2], 0, 4), D4)
hdr("size_mismatch_bf16.safetensors", "TS_ERR_ST_SIZE_MISMATCH", "rejects", '{"a":%s}' % t("BF16", [3], 0, 8), D4 * 2)
hdr("size_mismatch_empty.safetensors", "TS_ERR_ST_SIZE_MISMATCH", "rejects", '{"a":%s}' % t("F32", [0], 0, 4), D4)
hdr("overflow_numel.safetensors", "TS_ERR_ST_OVERFLOW", "rejects", '{"a":%s}' % t("U8", [2**32, 2**32, 2**32], 0, 4), D4)
hdr("overflow_bits.safetensors", "TS_ERR_ST_OVERFLOW", "rejects", '{"a":%s}' % t("F32", [2**62], 0, 4), D4)
hdr("overflow_integer_literal.safetensors", "TS_ERR_ST_OVERFLOW", "rejects", '{"a":%s}' % t("F32", [18446744073709551616], 0, 4), D4)
hdr("overlap_partial.safetensors", "TS_ERR_ST_OVERLAP", "rejects", '{"a":%s,"b":%s}' % (t("F32", [2], 0, 8), t("F32", [2], 4, 12)), D4 * 3)
hdr("overlap_same_range.safetensors", "TS_ERR_ST_OVERLAP", "rejects", '{"a":%s,"b":%s}' % (t("F32", [1], 0, 4), t("F32", [1], 0, 4)), D4)
hdr("overlap_empty_inside.safetensors", "TS_ERR_ST_OVERLAP", "rejects", '{"a":%s,"b":%s}' % (t("F32", [2], 0, 8), t("F32", [0], 4, 4)), D4 * 2)
hdr("hole_at_start.safetensors", "TS_ERR_ST_HOLE", "rejects", '{"a":%s}' % t("F32", [1], 4, 8), D4 * 2)
hdr("hole_between.safetensors", "TS_ERR_ST_HOLE", "rejects", '{"a":%s,"b":%s}' % (t("F32", [1], 0, 4), t("F32", [1], 8, 12)), D4 * 3)
hdr("incomplete_trailing_bytes.safetensors", "TS_ERR_ST_INCOMPLETE", "rejects", A4, D4 * 2)
hdr("incomplete_no_tensors.safetensors", "TS_ERR_ST_INCOMPLETE", "rejects", "{}", D4)
hdr("metadata_list.safetensors", "TS_ERR_ST_METADATA_NOT_OBJECT", "rejects", '{"__metadata__":[]}')
hdr("metadata_string.safetensors", "TS_ERR_ST_METADATA_NOT_OBJECT", "rejects", '{"__metadata__":"x"}')
hdr("metadata_int_value.safetensors", "TS_ERR_ST_METADATA_NOT_STRING", "rejects", '{"__metadata__":{"k":1}}')
hdr("metadata_null_value.safetensors", "TS_ERR_ST_METADATA_NOT_STRING", "rejects", '{"__metadata__":{"k":null}}')
hdr("metadata_object_value.safetensors", "TS_ERR_ST_METADATA_NOT_STRING", "rejects", '{"__metadata__":{"k":{"a":"b"}}}')
hdr("subbyte_f4_odd.safetensors", "TS_ERR_ST_SUBBYTE", "rejects", '{"a":%s}' % t("F4", [3], 0, 1), b"\x00")
hdr("subbyte_f6_one.safetensors", "TS_ERR_ST_SUBBYTE", "rejects", '{"a":%s}' % t("F6_E2M3", [1], 0, 1), b"\x00")
hdr("subbyte_f6_e3m2_five.safetensors", "TS_ERR_ST_SUBBYTE", "rejects", '{"a":%s}' % t("F6_E3M2", [5], 0, 4), b"\x00" * 4)
hdr("nul_in_name.safetensors", "TS_ERR_ST_NUL_IN_STRING", "accepts", '{"a\\u0000b":%s}' % t("F32", [1], 0, 4), D4)
hdr("nul_in_metadata.safetensors", "TS_ERR_ST_NUL_IN_STRING", "accepts", '{"__metadata__":{"k":"a\\u0000b"}}')


def main():
    for f in os.listdir(HERE):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(HERE, f))
    names = set()
    with open(os.path.join(HERE, "expected.txt"), "w") as m:
        m.write("# FILE STATUS REFERENCE  (written by make_corpus.py; see its docstring)\n")
        for name, status, ref, content in cases:
            assert name not in names, name
            names.add(name)
            with open(os.path.join(HERE, name), "wb") as f:
                f.write(content)
            m.write("%s %s %s\n" % (name, status, ref))
    print("make_corpus: %d files" % len(cases), file=sys.stderr)


if __name__ == "__main__":
    main()
