"""_errors.py: one exception class per ts_status, built from the library's own list.

TS_ERR_PARSE -> ParseError, TS_ERR_BAD_ARGS -> BadArgsError,
TS_ERR_ST_HEADER_TOO_LARGE -> StHeaderTooLargeError, ... all subclasses of
TesseraError, which carries .status (the name), .code (the value), .message
(ts_last_error(): the compiler-style "file:line:col: error: ..." text for
parse errors) and, when the message has them, .filename, .line and .column.
"""
import re

from . import _lib


class TesseraError(Exception):
    status = "TS_ERR"
    code = None

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.message = message
        m = re.match(r"^(.*?):(\d+):(\d+): ", message)
        self.filename, self.line, self.column = (m.group(1), int(m.group(2)), int(m.group(3))) if m else (None, None, None)

    def __str__(self):
        return "%s: %s" % (self.status, self.message)


# Errors that are also the Python built-in a caller would catch for them.
_ALSO = {
    "TS_ERR_INVALID_ARGUMENT": (ValueError,), "TS_ERR_BAD_ARGS": (ValueError,), "TS_ERR_RANK": (ValueError,),
    "TS_ERR_DTYPE_MISMATCH": (TypeError,), "TS_ERR_INDEX": (IndexError,), "TS_ERR_OUT_OF_MEMORY": (MemoryError,),
    "TS_ERR_IO": (OSError,), "TS_ERR_NOT_FOUND": (LookupError,), "TS_ERR_PARSE": (SyntaxError,),
    "TS_ERR_TIMEOUT": (TimeoutError,),
}

BY_CODE = {}
CLASSES = {}


def _class_name(status):
    words = status[len("TS_ERR_"):].lower().split("_")
    return "".join(w.capitalize() for w in words) + "Error"


for _code in range(-1, -200, -1):
    _name = _lib.lib.ts_status_name(_code).decode()
    if _name == "TS_UNKNOWN_STATUS" or not _name.startswith("TS_ERR_"):
        continue
    _bases = (TesseraError,) + _ALSO.get(_name, ())
    _cls = type(_class_name(_name), _bases, {"status": _name, "code": _code,
                                             "__doc__": _lib.lib.ts_strerror(_code).decode()})
    if SyntaxError in _bases:
        # SyntaxError's own __str__ and attributes would hide ours.
        _cls.__str__ = TesseraError.__str__
    BY_CODE[_code] = _cls
    CLASSES[_cls.__name__] = _cls


def error(code, message=None):
    """The exception for a failed call (message: ts_last_error() unless given)."""
    if message is None:
        message = _lib.lib.ts_last_error().decode("utf-8", "replace")
    cls = BY_CODE.get(code, TesseraError)
    e = cls(message, status=_lib.lib.ts_status_name(code).decode(), code=code)
    if isinstance(e, SyntaxError) and e.line is not None:
        e.lineno, e.offset, e.msg = e.line, e.column, message
    return e


def check(code):
    if code != 0:
        raise error(code)


def bad_args(message):
    return error(-20, message)  # TS_ERR_BAD_ARGS, raised before any C call
