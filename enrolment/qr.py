"""The QR code image: an SVG made by ``qrcode``, sized for phones held at arm's length."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.constants
from qrcode.image.svg import SvgPathFillImage


def qr_svg(data: str) -> bytes:
    # Error correction M: survives glare on a screen without making the code too dense.
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4, image_factory=SvgPathFillImage
    )
    code.add_data(data)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


def qr_svg_base64(data: str) -> str:
    return base64.b64encode(qr_svg(data)).decode()
