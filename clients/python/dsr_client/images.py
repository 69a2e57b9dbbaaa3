"""Builders for the API's token spans and image objects.

An image on the wire is one of ``{"png": "<base64>"}``, ``{"jpeg":
"<base64>"}``, ``{"codes": [...]}`` or ``{"path": "a/b.png"}`` (the last
only resolves on a server started with ``--image-root``).  ``image()`` turns
the values an RL pipeline usually holds into an inline form: PNG or JPEG
bytes, a ``data:image/...;base64,`` URI, a local file path, a PIL image (when
Pillow happens to be installed; it is never required) or a Hugging Face
``datasets`` ``Image`` cell ``{"bytes": ..., "path": ...}``.
"""

import base64
import io
import os
from typing import Any, Dict, Iterable, List, Union

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"

WIRE_KEYS = ("png", "jpeg", "codes", "path")

ImageLike = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", Dict[str, Any], Any]


def text(value: str) -> Dict[str, Any]:
    """A text span: tokenized by the server, no template applied."""
    if not isinstance(value, str):
        raise TypeError("text span needs a str, got %s" % type(value).__name__)
    return {"text": value}


def tokens(ids: Iterable[int]) -> Dict[str, Any]:
    """A token span, used verbatim."""
    return {"tokens": [int(t) for t in ids]}


def file_bytes(data: Union[bytes, bytearray, memoryview]) -> Dict[str, Any]:
    """An image from PNG or JPEG file bytes (recognised by signature)."""
    data = bytes(data)
    if data.startswith(PNG_SIGNATURE):
        return {"png": base64.b64encode(data).decode("ascii")}
    if data.startswith(JPEG_SIGNATURE):
        return {"jpeg": base64.b64encode(data).decode("ascii")}
    raise ValueError("image bytes are neither PNG nor JPEG (bad signature)")


def png_bytes(data: Union[bytes, bytearray, memoryview]) -> Dict[str, Any]:
    """An image from PNG (or JPEG) bytes; kept for callers of 0.1."""
    return file_bytes(data)


def data_uri(uri: str) -> Dict[str, Any]:
    """An image from a ``data:image/png;base64,...`` (or jpeg) URI."""
    head, sep, payload = uri.partition(",")
    if not uri.startswith("data:") or not sep or not head.endswith(";base64"):
        raise ValueError("not a base64 data: URI")
    return file_bytes(base64.b64decode(payload, validate=True))


def image_file(path: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]:
    """An image from a local PNG or JPEG file, sent inline as base64."""
    with open(path, "rb") as f:
        return file_bytes(f.read())


png_file = image_file


def codes(ids: Iterable[int]) -> Dict[str, Any]:
    """An image given as VQ codebook ids."""
    return {"codes": [int(c) for c in ids]}


def server_path(path: str) -> Dict[str, Any]:
    """An image the server reads itself, relative to its ``--image-root``."""
    return {"path": str(path)}


def _pil_to_png(img: Any) -> bytes:
    buf = io.BytesIO()
    if getattr(img, "mode", "RGB") not in ("RGB", "RGBA", "L", "LA", "P", "I;16"):
        img = img.convert("RGB")
    img.save(buf, format="PNG")
    return buf.getvalue()


def image(value: ImageLike) -> Dict[str, Any]:
    """Converts an image-like value into the wire image object.

    Accepted: an existing wire object (dict with ``png``/``jpeg``/``codes``/
    ``path``), PNG or JPEG bytes, a ``data:`` URI, a path (str or
    os.PathLike) to a local PNG or JPEG file, a ``datasets`` Image cell (dict
    with ``bytes`` and/or ``path``), or any object with a PIL-style
    ``save(fp, format=...)`` method.
    """
    if isinstance(value, dict):
        if any(k in value for k in WIRE_KEYS) and "bytes" not in value:
            return value
        if value.get("bytes") is not None:
            return file_bytes(value["bytes"])
        if value.get("path"):
            return image_file(value["path"])
        raise ValueError("image dict has none of png/jpeg/codes/path/bytes")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return file_bytes(value)
    if isinstance(value, str) and value.startswith("data:"):
        return data_uri(value)
    if isinstance(value, (str, os.PathLike)):
        return image_file(value)
    if callable(getattr(value, "save", None)) and hasattr(value, "size"):
        return file_bytes(_pil_to_png(value))
    raise TypeError("cannot send %s as an image (want PNG/JPEG bytes, a file path, "
                    "a PIL image or a wire image dict)" % type(value).__name__)


def images(values: Iterable[ImageLike]) -> List[Dict[str, Any]]:
    return [image(v) for v in values]


def decode_png(b64: str) -> bytes:
    """The PNG bytes of a base64 ``png`` field from a response."""
    return base64.b64decode(b64, validate=True)
