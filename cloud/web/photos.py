"""Photos of hazard reports: checked, re-encoded without metadata, kept on disk by content.

A phone's JPEG carries EXIF — the exact position, the phone's serial, sometimes the owner's
name — so nothing of the upload is kept but its pixels: Pillow decodes it (JPEG, PNG, WebP
only; a decompression bomb is refused), turns it upright, shrinks it to ``MAX_SIDE_PX`` and
writes a fresh JPEG. The name is the SHA-256 of that JPEG, so the same photo sent twice is
stored once and a name can never point outside the folder. Blocking: call it in a thread.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 8 * 1024 * 1024  # one upload
MAX_PIXELS = 40_000_000  # decoded size: past this it is a bomb, not a photo
MAX_SIDE_PX = 2048
FORMATS = frozenset({"JPEG", "PNG", "WEBP", "MPO"})  # MPO: some phones' JPEG
NAME = re.compile(r"^[0-9a-f]{64}\.jpg$")


class PhotoRefused(ValueError):
    """Not a photo we keep; ``str()`` says why, for the worker."""


class PhotoStore:
    """A folder of stripped JPEGs named by their hash."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def keep(self, data: bytes) -> str:
        """Store *data*'s pixels as a clean JPEG; its name. PhotoRefused when it is not one."""
        if len(data) > MAX_BYTES:
            raise PhotoRefused(f"larger than {MAX_BYTES // (1024 * 1024)} MB")
        clean = _reencode(data)
        name = hashlib.sha256(clean).hexdigest() + ".jpg"
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        if not path.exists():
            tmp = path.with_suffix(".part")
            tmp.write_bytes(clean)
            tmp.replace(path)  # whole or absent, even after a crash
        return name

    def path(self, name: str) -> Path | None:
        """The file of a stored photo, or None (a name that is not ours finds nothing)."""
        if not NAME.fullmatch(name):
            return None
        path = self.folder / name
        return path if path.is_file() else None


def _reencode(data: bytes) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                if img.format not in FORMATS:
                    raise PhotoRefused(f"not a JPEG, PNG or WebP photo ({img.format})")
                if img.width * img.height > MAX_PIXELS:
                    raise PhotoRefused("too many pixels")
                upright = ImageOps.exif_transpose(img)
                rgb = upright.convert("RGB")
        except (UnidentifiedImageError, Image.DecompressionBombWarning,
                Image.DecompressionBombError, OSError, SyntaxError) as err:  # fmt: skip
            raise PhotoRefused("not a readable photo") from err
    rgb.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX))
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=85, optimize=True)  # no exif=: nothing of the upload's
    return out.getvalue()
