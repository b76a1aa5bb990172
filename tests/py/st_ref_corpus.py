#!/usr/bin/env python3
"""st_ref_corpus.py DIR: checks that the reference implementation
(huggingface safetensors) accepts or rejects every corpus file as DIR/expected.txt
says. Prints one line per disagreement; exit 0 when none, 1 otherwise,
77 when the safetensors module is missing."""
import os
import sys

try:
    import safetensors
except ImportError:
    print("the python module safetensors is not installed", file=sys.stderr)
    sys.exit(77)


def main():
    d = sys.argv[1]
    bad = 0
    n = 0
    with open(os.path.join(d, "expected.txt")) as m:
        for line in m:
            if not line.strip() or line.startswith("#"):
                continue
            name, status, ref = line.split()
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            try:
                safetensors.deserialize(data)
                got = "accepts"
            except Exception as e:  # the reference raises SafetensorError (and others)
                got = "rejects"
                why = str(e)
            n += 1
            if got != ref:
                bad += 1
                print("%s: expected the reference to %s it, it %s%s" % (name, ref[:-1], got[:-1], "" if got == "accepts" else " (" + why[:200] + ")"))
    print("st_ref_corpus: %d files, %d disagreements (safetensors %s)" % (n, bad, safetensors.__version__))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
