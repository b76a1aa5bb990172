"""tessera_build.py: the package's own PEP 517 build backend (pure Python, no dependencies).

`pip install ./python` then needs nothing from PyPI, with or without build
isolation: a fresh Debian 12 virtual environment has neither `wheel` nor a
recent setuptools, and the machine may be offline. The wheel holds the
tessera/ package (and a libtessera copied next to it, if one is there: the
"bundled" step of the library search order, docs/python.md).
"""
import base64
import hashlib
import os
import tarfile
import zipfile

NAME, VERSION = "tessera", "0.1.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST = "%s-%s.dist-info" % (NAME, VERSION)
METADATA = """Metadata-Version: 2.1
Name: tessera
Version: %s
Summary: Tessera tile kernels from Python, on numpy arrays, with DLPack (ctypes over libtessera)
Requires-Python: >=3.8
Requires-Dist: numpy>=1.22
""" % VERSION
WHEEL = "Wheel-Version: 1.0\nGenerator: tessera_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _package_files():
    pkg = os.path.join(ROOT, NAME)
    for f in sorted(os.listdir(pkg)):
        if f.endswith(".py") or f.startswith("libtessera.so") or f.endswith(".dylib"):
            yield os.path.join(pkg, f), "%s/%s" % (NAME, f)


def _record_line(arc, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arc, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, DIST)
    os.makedirs(d, exist_ok=True)
    for name, text in (("METADATA", METADATA), ("WHEEL", WHEEL)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return DIST


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "%s-%s-py3-none-any.whl" % (NAME, VERSION)
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, arc in _package_files():
            with open(path, "rb") as f:
                data = f.read()
            z.writestr(arc, data)
            record.append(_record_line(arc, data))
        for fname, text in (("METADATA", METADATA), ("WHEEL", WHEEL), ("top_level.txt", NAME + "\n")):
            arc = "%s/%s" % (DIST, fname)
            z.writestr(arc, text)
            record.append(_record_line(arc, text.encode()))
        record.append("%s/RECORD,," % DIST)
        z.writestr("%s/RECORD" % DIST, "\n".join(record) + "\n")
    return name


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, VERSION)
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ("pyproject.toml", "README.md", "_build/tessera_build.py"):
            t.add(os.path.join(ROOT, rel), "%s/%s" % (base, rel))
        for path, arc in _package_files():
            if arc.endswith(".py") and not arc.endswith("_build_paths.py"):
                t.add(path, "%s/%s" % (base, arc))
        info = tarfile.TarInfo("%s/PKG-INFO" % base)
        data = METADATA.encode()
        info.size = len(data)
        import io
        t.addfile(info, io.BytesIO(data))
    return name
