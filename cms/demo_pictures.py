"""Stand-in photographs for the demo catalog: a gradient, the object's
silhouette (a vase, a scroll or a jade disc) and an ASCII label, as JPEG bytes."""

import colorsys
import math
from io import BytesIO

from PIL import Image, ImageDraw, ImageFont

IMAGE_SIZE = (1200, 900)


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def demo_picture(*, kind: str, hue: float, headline: str, caption: str, view: int = 0) -> bytes:
    """A stand-in photograph: a gradient, the object's silhouette, an ASCII label."""
    width, height = IMAGE_SIZE
    background, floor = _rgb(hue, 0.25, 0.95), _rgb(hue, 0.70, 0.40)
    gradients = (
        Image.linear_gradient("L"),
        Image.linear_gradient("L").rotate(90),
        Image.radial_gradient("L"),
    )
    mask = gradients[view % len(gradients)].resize(IMAGE_SIZE)
    picture = Image.composite(Image.new("RGB", IMAGE_SIZE, floor), Image.new("RGB", IMAGE_SIZE, background), mask)
    draw = ImageDraw.Draw(picture)
    scale = (1.0, 1.25, 0.8)[view % 3]
    center = (width // 2 + 80, height // 2 - 30)
    _SHAPES[kind](draw, center, scale, hue)
    draw.text((60, height - 190), headline, fill=(255, 255, 255), font=_font(72))
    draw.text((62, height - 95), caption, fill=(255, 255, 255), font=_font(32))
    buffer = BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _box(center: tuple[int, int], scale: float, left: int, top: int, right: int, bottom: int) -> tuple[int, ...]:
    x, y = center
    return (x + round(left * scale), y + round(top * scale), x + round(right * scale), y + round(bottom * scale))


def _draw_vase(draw: ImageDraw.ImageDraw, center: tuple[int, int], scale: float, hue: float) -> None:
    body, pattern = _rgb(hue, 0.10, 0.97), _rgb(hue, 0.80, 0.55)
    draw.ellipse(_box(center, scale, -180, -120, 180, 220), fill=body)
    draw.rectangle(_box(center, scale, -60, -260, 60, -90), fill=body)
    draw.ellipse(_box(center, scale, -100, -290, 100, -240), fill=body)
    for offset in (-40, 40, 120):
        band = _box(center, scale, -150, offset - 60, 150, offset + 60)
        draw.arc(band, 0, 180, fill=pattern, width=max(4, round(8 * scale)))
    draw.rectangle(_box(center, scale, -90, 205, 90, 235), fill=pattern)


def _draw_scroll(draw: ImageDraw.ImageDraw, center: tuple[int, int], scale: float, hue: float) -> None:
    paper, ink, rod = (242, 234, 214), (40, 40, 40), _rgb(hue, 0.6, 0.35)
    draw.rectangle(_box(center, scale, -170, -300, 170, 300), fill=paper)
    draw.rectangle(_box(center, scale, -195, -320, 195, -295), fill=rod)
    draw.rectangle(_box(center, scale, -195, 295, 195, 320), fill=rod)
    x, y = center
    mountains = [(-150, 180), (-90, 20), (-30, 120), (40, -60), (110, 100), (150, 180)]
    draw.polygon([(x + round(dx * scale), y + round(dy * scale)) for dx, dy in mountains], fill=ink)
    draw.rectangle(_box(center, scale, 100, -260, 140, -220), fill=(178, 34, 34))


def _draw_disc(draw: ImageDraw.ImageDraw, center: tuple[int, int], scale: float, hue: float) -> None:
    jade, grain = _rgb(hue, 0.35, 0.80), _rgb(hue, 0.55, 0.55)
    draw.ellipse(_box(center, scale, -260, -260, 260, 260), fill=jade)
    draw.ellipse(_box(center, scale, -70, -70, 70, 70), fill=_rgb(hue, 0.25, 0.95))
    for ring in (130, 200):
        for step in range(0, 360, 15):
            angle = math.radians(step)
            dx, dy = round(ring * math.cos(angle)), round(ring * math.sin(angle))
            draw.ellipse(_box(center, scale, dx - 9, dy - 9, dx + 9, dy + 9), fill=grain)


_SHAPES = {"vase": _draw_vase, "scroll": _draw_scroll, "disc": _draw_disc}
