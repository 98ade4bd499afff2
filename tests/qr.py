"""Decode a QR code the way a phone camera would: from pixels, with zxing-cpp."""

from __future__ import annotations

import re

import zxingcpp
from PIL import Image, ImageDraw

_MODULE = re.compile(r"M(\d+),(\d+)H")
_VIEWBOX = re.compile(r'viewBox="0 0 (\d+) (\d+)"')


def rasterise_svg(svg: str, scale: int = 8) -> Image.Image:
    """Draw the SVG's modules (``qrcode``'s path of unit squares) as black pixels on white."""
    match = _VIEWBOX.search(svg)
    if match is None:
        raise ValueError("not a qrcode SVG")
    size = int(match.group(1))
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y in _MODULE.findall(svg):
        draw.rectangle([int(x) * scale, int(y) * scale, (int(x) + 1) * scale - 1, (int(y) + 1) * scale - 1], fill=0)
    return image


def decode_qr(image: Image.Image) -> str:
    results = zxingcpp.read_barcodes(image)
    if not results:
        raise AssertionError("no QR code found in the image")
    return str(results[0].text)
