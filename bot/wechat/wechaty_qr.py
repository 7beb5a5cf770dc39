"""The login QR code a gateway sends with a `scan` event: printed in the terminal and saved
as a PNG for the operator to scan with the WeChat app.

Uses `qrcode` (already a dependency of python-wechaty, well kept, pure Python) with `pypng`
for the PNG writer, so no Pillow or native library is needed."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TextIO

import qrcode
from qrcode.image.pure import PyPNGImage


def _code(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(border=2, box_size=8, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(data)
    code.make(fit=True)
    return code


def ascii_art(data: str) -> str:
    """The QR code as block characters, readable by a phone camera off a terminal."""
    buffer = io.StringIO()
    _code(data).print_ascii(out=buffer, invert=True)
    return buffer.getvalue()


def save_png(data: str, path: Path) -> Path:
    """Write the QR code as a PNG (atomically: a phone may be reading the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = _code(data).make_image(image_factory=PyPNGImage)
    partial = path.with_suffix(".part")
    with partial.open("wb") as file:
        image.save(file)
    partial.replace(path)
    return path


def show(data: str, path: Path, *, out: TextIO | None = None) -> Path:
    """Print the code to the terminal (stderr by default) and save it as `path`."""
    stream = out or sys.stderr
    stream.write(ascii_art(data))
    stream.write(f"scan this QR code with WeChat to log in (also saved as {path})\n")
    stream.flush()
    return save_png(data, path)
