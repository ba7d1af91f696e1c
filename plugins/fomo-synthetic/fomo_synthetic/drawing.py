"""Procedural drawing primitives: masks, fills, glyphs, patterns and backgrounds.

Everything is drawn on a supersampled canvas in normalised coordinates
(``0..1`` across the image, origin top left) and box-filtered down to the
target size at the end, so shapes stay anti-aliased and recognisable even at
32x32 pixels. All randomness comes from a caller-provided ``numpy`` generator,
which keeps generation deterministic by seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

RGB = tuple[int, int, int]
Point = tuple[float, float]

SUPERSAMPLED_SIDE = 128
"""Side length the canvas aims for before downsampling (caps the supersampling factor)."""


def supersampling_factor(image_size: int) -> int:
    """How many canvas pixels per output pixel: 4 at 32 px, fewer for larger images."""
    return max(1, min(4, SUPERSAMPLED_SIDE // image_size))


def jitter_colour(colour: RGB, rng: np.random.Generator, amount: int = 18) -> RGB:
    """The colour with a small random shift per channel, so colour names cover a neighbourhood."""
    offsets = rng.integers(-amount, amount + 1, size=3).tolist()
    red, green, blue = (min(255, max(0, channel + offset)) for channel, offset in zip(colour, offsets, strict=True))
    return red, green, blue


class Canvas:
    """An RGB image drawn at ``image_size * factor`` pixels, addressed in normalised coordinates."""

    def __init__(self, image_size: int, background: RGB = (0, 0, 0)) -> None:
        self.image_size = image_size
        self.side = image_size * supersampling_factor(image_size)
        self.image = Image.new("RGB", (self.side, self.side), background)

    # -- coordinates

    def px(self, value: float) -> float:
        """A normalised length in canvas pixels."""
        return value * self.side

    def points(self, points: Sequence[Point]) -> list[Point]:
        """Normalised points in canvas pixels."""
        return [(x * self.side, y * self.side) for x, y in points]

    def blank_mask(self) -> Image.Image:
        """An empty single-channel mask the size of the canvas."""
        return Image.new("L", (self.side, self.side), 0)

    # -- painting

    def paint(self, mask: Image.Image, colour: RGB) -> None:
        """Fill the masked area with a flat colour (only within the mask's bounding box: much faster)."""
        box = mask.getbbox()
        if box is not None:
            self.image.paste(colour, box, mask.crop(box))

    def paint_array(self, pixels: np.ndarray, mask: Image.Image | None = None, smooth: bool = False) -> None:
        """Paste an ``[h, w, 3]`` uint8 array stretched over the canvas, optionally through a mask.

        Arrays may be coarser than the canvas (cheaper to compute): ``smooth`` upsamples
        them bilinearly, otherwise pixels stay crisp blocks.
        """
        layer = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "RGB")
        if layer.size != self.image.size:
            resample = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
            layer = layer.resize(self.image.size, resample)
        if mask is None:
            self.image = layer
        else:
            self.image.paste(layer, (0, 0), mask)

    def pattern_side(self) -> int:
        """Resolution for computed patterns: twice the output size (anti-aliases stripes), at most the canvas."""
        return min(self.side, 2 * self.image_size)

    def finish(self, rng: np.random.Generator | None = None, pixel_noise: float = 0.0) -> np.ndarray:
        """The image at its target size as uint8 ``[3, S, S]``, with optional per-pixel noise."""
        factor = self.side // self.image_size
        small = self.image.reduce(factor) if factor > 1 else self.image
        pixels = np.asarray(small, dtype=np.float32).copy()
        if pixel_noise > 0 and rng is not None:
            pixels += pixel_noise * rng.standard_normal(size=pixels.shape, dtype=np.float32)
        return np.clip(pixels, 0, 255).astype(np.uint8).transpose(2, 0, 1)


# ----------------------------------------------------------------------------- masks


def polygon_mask(canvas: Canvas, points: Sequence[Point]) -> Image.Image:
    """A filled polygon given in normalised coordinates."""
    mask = canvas.blank_mask()
    ImageDraw.Draw(mask).polygon(canvas.points(points), fill=255)
    return mask


def rectangle_mask(canvas: Canvas, corner_a: Point, corner_b: Point) -> Image.Image:
    """A filled axis-aligned rectangle between two corners."""
    mask = canvas.blank_mask()
    ImageDraw.Draw(mask).rectangle(canvas.points([corner_a, corner_b]), fill=255)
    return mask


def ellipse_mask(canvas: Canvas, centre: Point, radius: float) -> Image.Image:
    """A filled disc."""
    mask = canvas.blank_mask()
    cx, cy = centre
    box = canvas.points([(cx - radius, cy - radius), (cx + radius, cy + radius)])
    ImageDraw.Draw(mask).ellipse([box[0], box[1]], fill=255)
    return mask


def rotate_points(points: Sequence[Point], centre: Point, degrees: float) -> list[Point]:
    """Points rotated counter-clockwise (as seen on screen) about ``centre``."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    cx, cy = centre
    return [(cx + (x - cx) * cos + (y - cy) * sin, cy - (x - cx) * sin + (y - cy) * cos) for x, y in points]


def regular_polygon(centre: Point, radius: float, sides: int, rotation: float = 0.0) -> list[Point]:
    """Vertices of a regular polygon, the first one pointing up before rotation."""
    cx, cy = centre
    vertices = [(cx + radius * math.sin(2 * math.pi * k / sides), cy - radius * math.cos(2 * math.pi * k / sides)) for k in range(sides)]
    return rotate_points(vertices, centre, rotation) if rotation else vertices


def star_polygon(centre: Point, radius: float, points: int = 5, inner_ratio: float = 0.45) -> list[Point]:
    """Vertices of a star with ``points`` tips, one pointing up."""
    cx, cy = centre
    vertices = []
    for k in range(2 * points):
        r = radius if k % 2 == 0 else radius * inner_ratio
        angle = math.pi * k / points
        vertices.append((cx + r * math.sin(angle), cy - r * math.cos(angle)))
    return vertices


def heart_polygon(centre: Point, radius: float, steps: int = 48) -> list[Point]:
    """The classic parametric heart curve scaled to ``radius``."""
    cx, cy = centre
    vertices = []
    for k in range(steps):
        t = 2 * math.pi * k / steps
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        vertices.append((cx + radius * x / 17, cy - radius * (y + 2.5) / 17))
    return vertices


def cross_polygon(centre: Point, radius: float, arm: float = 0.36) -> list[Point]:
    """A plus sign whose arms are ``arm * 2 * radius`` thick."""
    cx, cy = centre
    a, r = radius * arm, radius
    outline = [
        (-a, -r),
        (a, -r),
        (a, -a),
        (r, -a),
        (r, a),
        (a, a),
        (a, r),
        (-a, r),
        (-a, a),
        (-r, a),
        (-r, -a),
        (-a, -a),
    ]
    return [(cx + x, cy + y) for x, y in outline]


def shape_mask(canvas: Canvas, shape: str, centre: Point, radius: float, rotation: float = 0.0) -> Image.Image:
    """A filled mask of a named shape; ``radius`` is the half-extent in normalised units."""
    if shape == "circle":
        return ellipse_mask(canvas, centre, radius)
    if shape == "crescent":
        mask = ellipse_mask(canvas, centre, radius)
        bite = ellipse_mask(canvas, (centre[0] + 0.45 * radius, centre[1] - 0.2 * radius), 0.8 * radius)
        mask = ImageChops.subtract(mask, bite)
        return mask.rotate(rotation, center=canvas.points([centre])[0]) if rotation else mask
    builders = {
        "square": lambda: regular_polygon(centre, radius * 1.3, 4, 45.0),
        "triangle": lambda: [(x, y + 0.2 * radius) for x, y in regular_polygon(centre, radius * 1.2, 3)],
        "cross": lambda: cross_polygon(centre, radius),
        "diamond": lambda: [
            (centre[0], centre[1] - 1.15 * radius),
            (centre[0] + 0.8 * radius, centre[1]),
            (centre[0], centre[1] + 1.15 * radius),
            (centre[0] - 0.8 * radius, centre[1]),
        ],
        "star": lambda: star_polygon(centre, radius * 1.2),
        "heart": lambda: heart_polygon(centre, radius * 1.1),
        "hexagon": lambda: regular_polygon(centre, radius * 1.1, 6, 30.0),
    }
    if shape not in builders:
        raise ValueError(f"unknown shape {shape!r}")
    vertices = builders[shape]()
    if rotation:
        vertices = rotate_points(vertices, centre, rotation)
    return polygon_mask(canvas, vertices)


def outline_of(mask: Image.Image, thickness_px: int) -> Image.Image:
    """The band of ``mask`` within about ``thickness_px`` canvas pixels of its edge.

    Erodes by box-blurring and keeping only pixels whose whole neighbourhood is
    inside the shape: much faster than a min filter of the same size.
    """
    blurred = mask.filter(ImageFilter.BoxBlur(max(1, thickness_px)))
    eroded = blurred.point(lambda value: 255 if value >= 250 else 0)
    return ImageChops.subtract(mask, eroded)


def arrow_mask(canvas: Canvas, centre: Point, length: float, direction_degrees: float, thickness: float) -> Image.Image:
    """An arrow through ``centre`` pointing at ``direction_degrees`` (0 = right, 90 = up)."""
    cx, cy = centre
    half, shaft, head = length / 2, thickness / 2, length * 0.42
    head_half_width = max(thickness * 1.6, length * 0.3)
    pointing_right = [
        (cx - half, cy - shaft),
        (cx + half - head, cy - shaft),
        (cx + half - head, cy - head_half_width),
        (cx + half, cy),
        (cx + half - head, cy + head_half_width),
        (cx + half - head, cy + shaft),
        (cx - half, cy + shaft),
    ]
    return polygon_mask(canvas, rotate_points(pointing_right, centre, direction_degrees))


@lru_cache(maxsize=64)
def glyph_font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at a pixel size (cached: loading it is the slow part)."""
    return ImageFont.load_default(size=size_px)


def glyph_mask(canvas: Canvas, text: str, centre: Point, height: float, rotation: float = 0.0, stroke: float = 0.0) -> Image.Image:
    """A text glyph centred at ``centre``, ``height`` tall (normalised), rotated and optionally emboldened."""
    mask = canvas.blank_mask()
    font = glyph_font(max(6, round(canvas.px(height))))
    position = canvas.points([centre])[0]
    stroke_px = round(canvas.px(stroke))
    ImageDraw.Draw(mask).text(position, text, fill=255, font=font, anchor="mm", stroke_width=stroke_px, stroke_fill=255)
    if rotation:
        mask = mask.rotate(rotation, resample=Image.Resampling.BILINEAR, center=position)
    return mask


# ----------------------------------------------------------------------------- patterns and backgrounds


def grid_coordinates(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ``(x, y)`` coordinates of pixel centres of a ``side x side`` canvas."""
    axis = (np.arange(side, dtype=np.float32) + 0.5) / side
    return np.meshgrid(axis, axis)


def pattern_mask(pattern: str, side: int, period: float, rotation: float = 0.0, phase: float = 0.0) -> np.ndarray:
    """A boolean ``[side, side]`` mask of a periodic pattern with ``period`` in normalised units."""
    x, y = grid_coordinates(side)
    if rotation:
        cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
        x, y = (x - 0.5) * cos - (y - 0.5) * sin, (x - 0.5) * sin + (y - 0.5) * cos
    u, v = x / period + phase, y / period + phase
    if pattern == "horizontal stripes":
        return np.floor(v) % 2 == 0
    if pattern == "vertical stripes":
        return np.floor(u) % 2 == 0
    if pattern == "diagonal stripes":
        return np.floor((u + v) / math.sqrt(2)) % 2 == 0
    if pattern == "checkerboard":
        return (np.floor(u) + np.floor(v)) % 2 == 0
    if pattern == "polka dots":
        return (u % 1 - 0.5) ** 2 + (v % 1 - 0.5) ** 2 < 0.28**2
    if pattern == "grid":
        return (u % 1 < 0.22) | (v % 1 < 0.22)
    if pattern == "zigzag":
        return np.floor(v + 0.5 * np.abs((u % 1) * 2 - 1)) % 2 == 0
    if pattern == "rings":
        radius = np.sqrt((x - 0.5) ** 2 + (y - 0.5) ** 2) / period * 2 + phase
        return np.floor(radius) % 2 == 0
    raise ValueError(f"unknown pattern {pattern!r}")


def two_colour_pattern(mask: np.ndarray, foreground: RGB, background: RGB) -> np.ndarray:
    """An ``[side, side, 3]`` image showing ``foreground`` where the mask is set."""
    palette = np.asarray([background, foreground], dtype=np.uint8)
    return palette[mask.astype(np.intp)]


def noise_background(rng: np.random.Generator, grey: int, spread: float, cells: int) -> np.ndarray:
    """Blocky grey noise around ``grey``: a ``[cells, cells, 3]`` array of random tiles with a faint tint."""
    luminance = grey + rng.normal(0.0, spread, size=(cells, cells, 1))
    tint = rng.normal(0.0, spread * 0.15, size=(cells, cells, 3))
    return np.clip(luminance + tint, 0, 255).astype(np.uint8)


def gradient_background(side: int, start: RGB, end: RGB, rotation: float) -> np.ndarray:
    """A linear gradient from ``start`` to ``end`` across the canvas at an angle."""
    x, y = grid_coordinates(side)
    angle = math.radians(rotation)
    t = np.clip((x - 0.5) * math.cos(angle) + (y - 0.5) * math.sin(angle) + 0.5, 0, 1)[..., None]
    pixels = (1 - t) * np.asarray(start, np.float32) + t * np.asarray(end, np.float32)
    return pixels.astype(np.uint8)


def smooth_field(side: int, rng: np.random.Generator, base: RGB, amplitude: float) -> np.ndarray:
    """A colour with a soft, low-frequency brightness variation (for swatches)."""
    x, y = grid_coordinates(side)
    wave = np.zeros_like(x)
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * math.pi)
        wave += np.sin(2 * math.pi * (fx * x + fy * y) + phase)
    pixels = np.asarray(base, np.float32) * (1 + amplitude * wave[..., None] / 3)
    return np.clip(pixels, 0, 255).astype(np.uint8)
