"""thumbnailer: scales an image to the asked width and height.

The source image is drawn here with Pillow, so nothing is downloaded.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import random

from PIL import Image, ImageDraw

from .spec import FunctionSpec, Payload

MIN_SIDE = 50
MAX_SIDE = 200
SOURCE_SIZE = (640, 480)


@functools.cache
def source_image_b64() -> str:
    """A deterministic 640x480 JPEG (gradient and shapes), base64-encoded."""
    horizontal = Image.linear_gradient("L").rotate(90).resize(SOURCE_SIZE)
    vertical = Image.linear_gradient("L").resize(SOURCE_SIZE)
    flat = Image.new("L", SOURCE_SIZE, 128)
    image = Image.merge("RGB", (horizontal, vertical, flat))
    draw = ImageDraw.Draw(image)
    draw.ellipse((160, 80, 480, 400), outline=(255, 255, 255), width=8)
    draw.rectangle((40, 40, 200, 140), fill=(20, 20, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def make_payload(rng: random.Random) -> Payload:
    size = (rng.randint(MIN_SIDE, MAX_SIDE), rng.randint(MIN_SIDE, MAX_SIDE))
    request = {"image": source_image_b64(), "width": size[0], "height": size[1]}
    return Payload(json.dumps(request).encode(), expected=size)


def check_response(payload: Payload, response: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(response)) as image:
            size = image.size
    except Exception:
        return f"thumbnailer answered {response[:40]!r}, not an image"
    if size != tuple(payload.expected):
        return f"thumbnailer returned {size[0]}x{size[1]}, asked {payload.expected[0]}x{payload.expected[1]}"
    return None


SPEC = FunctionSpec(
    name="thumbnailer",
    env_prefix="THUMBNAILER",
    image_tag="hyperfaas-thumbnailer-json:latest",
    memory_mib=512,
    cpu_period=100_000,
    cpu_quota=50_000,
    make_payload=make_payload,
    check_response=check_response,
    description='JSON {"image": base64 JPEG, "width": 50-200, "height": 50-200}',
)
