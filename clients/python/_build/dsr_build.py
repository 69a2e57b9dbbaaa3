"""A PEP 517 build backend in the standard library only.

dsr-client has no dependencies and nothing to compile, so its wheel is a zip
of the package plus the dist-info files.  Building it needs no setuptools or
wheel, hence no package index: ``pip install ./clients/python`` works in a
venv with no network (and ``--no-build-isolation`` skips even the isolated
build environment).  ``pip install -e`` gets a .pth file naming this folder.
"""

import base64
import hashlib
import os
import re
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "dsr_client"


def _project():
    text = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
    field = lambda k: re.search(r'^%s\s*=\s*"([^"]*)"' % k, text, re.M).group(1)  # noqa: E731
    return field("name"), field("version"), field("description"), field("requires-python")


def _metadata():
    name, version, summary, requires = _project()
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return ("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\nRequires-Python: %s\n"
            "Classifier: Typing :: Typed\nDescription-Content-Type: text/markdown\n\n%s"
            % (name, version, summary, requires, readme))


def _dist_info():
    name, version, _, _ = _project()
    return "%s-%s.dist-info" % (name.replace("-", "_"), version)


def _write_wheel(wheel_directory, files):
    name, version, _, _ = _project()
    dist = _dist_info()
    files = dict(files)
    files[dist + "/METADATA"] = _metadata().encode("utf-8")
    files[dist + "/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: dsr_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (path, digest, len(data)))
    record.append(dist + "/RECORD,,")
    files[dist + "/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = "%s-%s-py3-none-any.whl" % (name.replace("-", "_"), version)
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {}
    pkg = os.path.join(ROOT, PACKAGE)
    for fn in sorted(os.listdir(pkg)):
        if fn.endswith(".py") or fn == "py.typed":
            with open(os.path.join(pkg, fn), "rb") as f:
                files["%s/%s" % (PACKAGE, fn)] = f.read()
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, {"dsr_client_editable.pth": (ROOT + "\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    import tarfile
    name, version, _, _ = _project()
    base = "%s-%s" % (name.replace("-", "_"), version)
    path = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(path, "w:gz") as t:
        for rel in ("pyproject.toml", "README.md", "_build", PACKAGE):
            t.add(os.path.join(ROOT, rel), arcname=base + "/" + rel,
                  filter=lambda ti: None if "__pycache__" in ti.name else ti)
        pkg_info = _metadata().encode()
        import io
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(pkg_info)
        t.addfile(ti, io.BytesIO(pkg_info))
    return base + ".tar.gz"
