"""The visual domains: vocabulary, caption templates, styles and how each concept is drawn.

A :class:`Domain` knows its concepts (split into ``base`` ones, which the
pretraining pool teaches, and ``new`` ones, which only the adaptation stream
shows), how to draw a sample of a concept in a given *style*, and how to
caption it. Styles other than ``canonical`` are the distribution shifts of the
zero-shot sets: the same concept drawn differently.

Every drawing function returns the image and the caption fields it decided on
(colour, size, position...), so captions always describe the image they belong to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from . import drawing
from .drawing import RGB, Canvas

# ----------------------------------------------------------------------------- vocabulary

COLOURS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 175, 60),
    "blue": (45, 85, 235),
    "yellow": (240, 215, 40),
    "white": (240, 240, 240),
    "black": (15, 15, 15),
    "purple": (140, 50, 190),
    "orange": (245, 135, 25),
    "pink": (250, 140, 200),
    "cyan": (40, 215, 225),
    "brown": (125, 75, 35),
}
BASE_COLOURS = ("red", "green", "blue", "yellow")
NEW_COLOURS = ("purple", "orange", "pink", "cyan", "brown")
BASE_SHAPES = ("circle", "square", "triangle", "cross")
NEW_SHAPES = ("star", "heart", "crescent", "diamond")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ARROW_DIRECTIONS: dict[str, float] = {
    "right": 0.0,
    "up-right": 45.0,
    "up": 90.0,
    "up-left": 135.0,
    "left": 180.0,
    "down-left": 225.0,
    "down": 270.0,
    "down-right": 315.0,
}
PATTERN_CLASSNAMES: dict[str, str] = {
    "horizontal stripes": "horizontal stripe pattern",
    "vertical stripes": "vertical stripe pattern",
    "checkerboard": "checkerboard pattern",
    "polka dots": "polka dot pattern",
    "diagonal stripes": "diagonal stripe pattern",
    "grid": "grid pattern",
    "zigzag": "zigzag pattern",
    "rings": "concentric ring pattern",
}
PATTERN_PERIOD_SCALE: dict[str, float] = {"polka dots": 2.0, "grid": 2.0, "rings": 1.6}
"""Some patterns read better with larger cells than stripes do."""
BASE_PATTERNS = ("horizontal stripes", "vertical stripes", "checkerboard", "polka dots")
NEW_PATTERNS = ("diagonal stripes", "grid", "zigzag", "rings")
FLAG_COLOURS = (
    ("red", "white", "blue"),
    ("green", "white", "red"),
    ("black", "red", "yellow"),
    ("blue", "yellow", "green"),
)
RELATIONS = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

GENERIC_CLASS_TEMPLATES = ("a picture of a {}.", "a drawing of a {}.")
"""Zero-shot templates shared by the pool's domains, so its classes can be told apart with one prompt set."""

Fields = dict[str, str]
DrawFunction = Callable[["ConceptSpec | None", str, np.random.Generator, int], tuple[np.ndarray, Fields]]


@dataclass(frozen=True)
class ConceptSpec:
    """One class: the name used in captions and prompts, and what the drawing needs to know."""

    classname: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Domain:
    """A family of concepts drawn the same way, with its own captions and zero-shot prompts.

    ``caption_templates`` are ``str.format`` strings over ``{name}`` (the class
    name) and the fields the drawing returns; ``class_templates`` contain ``{}``
    for zero-shot classification. ``styles`` lists the styles ``draw`` accepts.
    """

    key: str
    description: str
    base: tuple[ConceptSpec, ...]
    new: tuple[ConceptSpec, ...]
    caption_templates: tuple[str, ...]
    class_templates: tuple[str, ...]
    styles: tuple[str, ...]
    draw: DrawFunction

    def sample(self, concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
        """Draw one image of ``concept`` in ``style``: uint8 ``[3, S, S]`` and its caption fields."""
        if style not in self.styles:
            raise ValueError(f"domain {self.key!r} has no style {style!r} (it has {', '.join(self.styles)})")
        return self.draw(concept, style, rng, image_size)

    def captions(self, concept: ConceptSpec | None, fields: Fields, rng: np.random.Generator, count: int) -> list[str]:
        """``count`` distinct captions of one sample, from randomly chosen templates."""
        count = min(count, len(self.caption_templates))
        chosen = rng.choice(len(self.caption_templates), size=count, replace=False)
        values = dict(fields, name=concept.classname if concept else "")
        return [fix_articles(self.caption_templates[int(i)].format(**values)) for i in sorted(chosen)]

    def canonical_caption(self, concept: ConceptSpec | None, fields: Fields) -> str:
        """The single caption used where a sample must have exactly one (retrieval test sets)."""
        values = dict(fields, name=concept.classname if concept else "")
        return fix_articles(self.caption_templates[0].format(**values))


def fix_articles(text: str) -> str:
    """Turn ``a`` into ``an`` before a vowel, so templates can always write ``a``."""
    words = text.split(" ")
    for i in range(len(words) - 1):
        if words[i] == "a" and words[i + 1][:1].lower() in "aeiou":
            words[i] = words[i] + "n"
    return " ".join(words)


# ----------------------------------------------------------------------------- shared helpers


def position_words(cx: float, cy: float) -> str:
    """Where a centre lies, in words ("in the centre", "at the top left")."""
    vertical = "top" if cy < 0.42 else "bottom" if cy > 0.58 else ""
    horizontal = "left" if cx < 0.42 else "right" if cx > 0.58 else ""
    place = " ".join(word for word in (vertical, horizontal) if word)
    return f"at the {place}" if place else "in the centre"


def pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    """One option, uniformly."""
    return options[int(rng.integers(len(options)))]


def clutter_background(canvas: Canvas, rng: np.random.Generator) -> str:
    """Paint a desaturated busy background (noise, gradient or faint texture); returns its name."""
    kind = pick(rng, ("noisy", "gradient", "textured"))
    grey = int(rng.integers(55, 130))
    side = canvas.pattern_side()
    if kind == "noisy":
        pixels = drawing.noise_background(rng, grey, float(rng.uniform(20, 40)), int(rng.integers(4, 12)))
    elif kind == "gradient":
        other = int(np.clip(grey + rng.choice([-1, 1]) * rng.integers(50, 90), 0, 255))
        pixels = drawing.gradient_background(side, (grey,) * 3, (other,) * 3, float(rng.uniform(0, 360)))
    else:
        mask = drawing.pattern_mask(
            pick(rng, (*BASE_PATTERNS, *NEW_PATTERNS)), side, float(rng.uniform(0.06, 0.12)), float(rng.uniform(0, 90))
        )
        pixels = drawing.two_colour_pattern(mask, (grey + 35,) * 3, (grey,) * 3)
    canvas.paint_array(pixels, smooth=kind == "gradient")
    return kind


def place_centre(rng: np.random.Generator, extent: float, jitter: float | None) -> tuple[float, float]:
    """A centre keeping an object of half-size ``extent`` inside; near the middle when ``jitter`` is set."""
    low, high = extent, 1 - extent
    if jitter is not None:
        low, high = max(low, 0.5 - jitter), min(high, 0.5 + jitter)
    if low >= high:
        return 0.5, 0.5
    return float(rng.uniform(low, high)), float(rng.uniform(low, high))


# ----------------------------------------------------------------------------- shapes


def draw_shape(concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
    """A coloured shape: filled on black (canonical), outlined (``outline``) or on a busy background (``clutter``)."""
    assert concept is not None
    canvas = Canvas(image_size)
    background = "black"
    if style == "clutter":
        background = clutter_background(canvas, rng)
        radius = float(rng.uniform(0.2, 0.34))
        centre = place_centre(rng, radius * 1.25, None)
    else:
        radius = float(rng.uniform(0.22, 0.36))
        centre = place_centre(rng, radius * 1.25, 0.12)
    colour = drawing.jitter_colour(COLOURS[concept.attributes["colour"]], rng)
    mask = drawing.shape_mask(canvas, concept.attributes["shape"], centre, radius, float(rng.uniform(-12, 12)))
    fill = "filled"
    if style == "outline":
        mask = drawing.outline_of(mask, round(canvas.px(float(rng.uniform(0.05, 0.075)))))
        fill = "outlined"
    canvas.paint(mask, colour)
    fields = {"size": "small" if radius < 0.29 else "large", "position": position_words(*centre), "background": background, "fill": fill}
    return canvas.finish(rng, pixel_noise=3.0), fields


def shape_concepts(shapes: tuple[str, ...], colours: tuple[str, ...]) -> tuple[ConceptSpec, ...]:
    """Every colour-shape combination, e.g. ``red circle``."""
    return tuple(ConceptSpec(f"{colour} {shape}", {"shape": shape, "colour": colour}) for shape in shapes for colour in colours)


SHAPES = Domain(
    key="shapes",
    description="a filled geometric shape in a colour; the class is colour + shape",
    base=shape_concepts(BASE_SHAPES, BASE_COLOURS),
    new=shape_concepts(NEW_SHAPES, BASE_COLOURS),
    caption_templates=(
        "a {name}.",
        "a picture of a {name}.",
        "a drawing of a {name}.",
        "a {size} {name}.",
        "a {name} {position}.",
        "a {size} {name} {position}.",
        "a {fill} {name} on a {background} background.",
    ),
    class_templates=GENERIC_CLASS_TEMPLATES,
    styles=("canonical", "outline", "clutter"),
    draw=draw_shape,
)


# ----------------------------------------------------------------------------- colour swatches


def draw_swatch(concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
    """The whole image in one colour with soft shading; ``noisy``: a washed-out patch of it on grey noise, grainy."""
    assert concept is not None
    canvas = Canvas(image_size)
    reference = COLOURS[concept.attributes["colour"]]
    if style == "noisy":
        grey = int(rng.integers(80, 170))
        canvas.paint_array(drawing.noise_background(rng, grey, 30.0, int(rng.integers(4, 9))))
        colour = drawing.jitter_colour(reference, rng, 30)
        wash = float(rng.uniform(0.2, 0.4))
        red, green, blue = (round((1 - wash) * channel + wash * grey) for channel in colour)
        field = drawing.smooth_field(image_size, rng, (red, green, blue), 0.35)
        extent = float(rng.uniform(0.5, 0.75))
        left, top = float(rng.uniform(0, 1 - extent)), float(rng.uniform(0, 1 - extent))
        patch = drawing.rectangle_mask(canvas, (left, top), (left + extent, top + extent))
        canvas.paint_array(field, patch, smooth=True)
        grain = 14.0
    else:
        colour = drawing.jitter_colour(reference, rng)
        canvas.paint_array(drawing.smooth_field(image_size, rng, colour, 0.15), smooth=True)
        grain = 3.0
    shade = "light" if sum(colour) > sum(reference) else "dark"
    return canvas.finish(rng, pixel_noise=grain), {"shade": shade}


SWATCHES = Domain(
    key="colours",
    description="a swatch filling the image with one colour; the class is the colour",
    base=tuple(ConceptSpec(f"{colour} swatch", {"colour": colour}) for colour in BASE_COLOURS),
    new=tuple(ConceptSpec(f"{colour} swatch", {"colour": colour}) for colour in NEW_COLOURS),
    caption_templates=(
        "a {name}.",
        "a picture of a {name}.",
        "a drawing of a {name}.",
        "a {shade} {name}.",
        "a plain {name} filling the image.",
        "a colour sample: a {name}.",
    ),
    class_templates=GENERIC_CLASS_TEMPLATES,
    styles=("canonical", "noisy"),
    draw=draw_swatch,
)


# ----------------------------------------------------------------------------- glyphs (digits, letters)


def draw_glyph(concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
    """A large upright character (canonical), or a smaller, bolder one tilted 15-30 degrees (``rotated``)."""
    assert concept is not None
    canvas = Canvas(image_size)
    colour_name = pick(rng, (*BASE_COLOURS, "white"))
    background = "black"
    if style == "rotated":
        height = float(rng.uniform(0.6, 0.8))
        rotation = float(rng.choice([-1, 1]) * rng.uniform(15, 30))
        stroke = float(rng.uniform(0.01, 0.02))
        centre = place_centre(rng, height * 0.45, 0.12)
    else:
        height = float(rng.uniform(0.75, 0.95))
        rotation = float(rng.uniform(-8, 8))
        stroke = float(rng.uniform(0.0, 0.012))
        centre = place_centre(rng, height * 0.45, 0.06)
    mask = drawing.glyph_mask(canvas, concept.attributes["glyph"], centre, height, rotation, stroke)
    canvas.paint(mask, drawing.jitter_colour(COLOURS[colour_name], rng))
    fields = {"colour": colour_name, "background": background, "tilt": "tilted" if abs(rotation) > 12 else "upright"}
    return canvas.finish(rng, pixel_noise=3.0), fields


GLYPH_CAPTIONS = (
    "a {name}.",
    "a picture of a {name}.",
    "a drawing of a {name}.",
    "a {colour} {name}.",
    "a {colour} {name} on a {background} background.",
    "a {tilt} {name} in {colour}.",
)

DIGITS = Domain(
    key="digits",
    description="a printed digit; the class is the digit",
    base=tuple(ConceptSpec(f"digit {d}", {"glyph": str(d)}) for d in range(5)),
    new=tuple(ConceptSpec(f"digit {d}", {"glyph": str(d)}) for d in range(5, 10)),
    caption_templates=(*GLYPH_CAPTIONS, "the number {number} written as a {name}."),
    class_templates=GENERIC_CLASS_TEMPLATES,
    styles=("canonical", "rotated"),
    draw=lambda concept, style, rng, size: _with_number_word(draw_glyph(concept, style, rng, size), concept),
)


def _with_number_word(drawn: tuple[np.ndarray, Fields], concept: ConceptSpec | None) -> tuple[np.ndarray, Fields]:
    """Add the digit's spelled-out name to the caption fields."""
    image, fields = drawn
    assert concept is not None
    return image, dict(fields, number=NUMBER_WORDS[int(concept.attributes["glyph"])])


LETTERS = Domain(
    key="letters",
    description="a printed capital letter; the class is the letter",
    base=(),
    new=tuple(ConceptSpec(f"letter {c}", {"glyph": c}) for c in "ABCDEFGH"),
    caption_templates=(*GLYPH_CAPTIONS, "the capital {name} in {colour}."),
    class_templates=GENERIC_CLASS_TEMPLATES,
    styles=("canonical", "rotated"),
    draw=draw_glyph,
)


# ----------------------------------------------------------------------------- textures


def draw_texture(concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
    """A two-colour periodic pattern: colour on black (canonical), or finer/coarser, tilted, on grey (``shifted``)."""
    assert concept is not None
    pattern = concept.attributes["pattern"]
    canvas = Canvas(image_size)
    colour_name = pick(rng, (*BASE_COLOURS, "white"))
    foreground = drawing.jitter_colour(COLOURS[colour_name], rng)
    scale = PATTERN_PERIOD_SCALE.get(pattern, 1.0)
    if style == "shifted":
        period = scale * float(rng.choice([rng.uniform(0.07, 0.085), rng.uniform(0.17, 0.21)]))
        rotation = float(rng.uniform(-12, 12))
        grey = int(rng.integers(60, 120))
        background_colour: RGB = (grey, grey, grey)
        background = "grey"
    else:
        period = scale * float(rng.uniform(0.1, 0.14))
        rotation = float(rng.uniform(-3, 3))
        background_colour, background = (0, 0, 0), "black"
    mask = drawing.pattern_mask(pattern, canvas.pattern_side(), period, rotation, float(rng.uniform(0, 1)))
    canvas.paint_array(drawing.two_colour_pattern(mask, foreground, background_colour))
    fields = {"colour": colour_name, "background": background, "scale": "fine" if period / scale < 0.12 else "coarse"}
    return canvas.finish(rng, pixel_noise=3.0 if style == "canonical" else 10.0), fields


TEXTURES = Domain(
    key="textures",
    description="a periodic two-colour pattern covering the image; the class is the pattern",
    base=tuple(ConceptSpec(PATTERN_CLASSNAMES[p], {"pattern": p}) for p in BASE_PATTERNS),
    new=tuple(ConceptSpec(PATTERN_CLASSNAMES[p], {"pattern": p}) for p in NEW_PATTERNS),
    caption_templates=(
        "a {name}.",
        "a picture of a {name}.",
        "a drawing of a {name}.",
        "a {colour} {name}.",
        "a {scale} {colour} {name}.",
        "a {colour} and {background} {name}.",
    ),
    class_templates=GENERIC_CLASS_TEMPLATES,
    styles=("canonical", "shifted"),
    draw=draw_texture,
)


# ----------------------------------------------------------------------------- counts


def draw_count(concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
    """``count`` same-coloured dots scattered without overlap."""
    assert concept is not None
    count = int(concept.attributes["count"])
    canvas = Canvas(image_size)
    colour_name = pick(rng, (*BASE_COLOURS, "white"))
    radius = float(rng.uniform(0.07, 0.095))
    centres: list[tuple[float, float]] = []
    while len(centres) < count:
        candidate = place_centre(rng, radius + 0.04, None)
        if all(math.dist(candidate, other) > 2.6 * radius for other in centres):
            centres.append(candidate)
    for centre in centres:
        canvas.paint(drawing.ellipse_mask(canvas, centre, radius), drawing.jitter_colour(COLOURS[colour_name], rng))
    return canvas.finish(rng, pixel_noise=3.0), {"colour": colour_name}


COUNTS = Domain(
    key="counts",
    description="one to six dots; the class is how many",
    base=(),
    new=tuple(ConceptSpec(f"{NUMBER_WORDS[n]} {'dot' if n == 1 else 'dots'}", {"count": str(n)}) for n in range(1, 7)),
    caption_templates=(
        "{name}.",
        "a picture of {name}.",
        "a drawing of {name}.",
        "{name} in {colour}.",
        "exactly {name} on a black background.",
        "a count of {name}, all {colour}.",
    ),
    class_templates=("a picture of {}.", "a drawing of {}."),
    styles=("canonical",),
    draw=draw_count,
)


# ----------------------------------------------------------------------------- arrows


def draw_arrow(concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
    """A solid arrow pointing in one of eight directions."""
    assert concept is not None
    canvas = Canvas(image_size)
    colour_name = pick(rng, (*BASE_COLOURS, "white"))
    length = float(rng.uniform(0.6, 0.82))
    direction = ARROW_DIRECTIONS[concept.attributes["direction"]] + float(rng.uniform(-8, 8))
    centre = place_centre(rng, length * 0.5, 0.08)
    mask = drawing.arrow_mask(canvas, centre, length, direction, float(rng.uniform(0.1, 0.15)))
    canvas.paint(mask, drawing.jitter_colour(COLOURS[colour_name], rng))
    return canvas.finish(rng, pixel_noise=3.0), {"colour": colour_name}


ARROWS = Domain(
    key="arrows",
    description="an arrow; the class is the direction it points",
    base=(),
    new=tuple(ConceptSpec(f"arrow pointing {d}", {"direction": d}) for d in ARROW_DIRECTIONS),
    caption_templates=(
        "an {name}.",
        "a picture of an {name}.",
        "a drawing of an {name}.",
        "a {colour} {name}.",
        "a thick {colour} {name}.",
        "a sign with an {name}.",
    ),
    class_templates=("a picture of an {}.", "a drawing of an {}."),
    styles=("canonical",),
    draw=draw_arrow,
)


# ----------------------------------------------------------------------------- flags


def draw_flag(concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
    """A tricolour flag on a pole against a grey sky; stripes run horizontally or vertically."""
    assert concept is not None
    grey = int(rng.integers(90, 140))
    canvas = Canvas(image_size, (grey, grey, grey + 15))
    width, height = float(rng.uniform(0.62, 0.76)), float(rng.uniform(0.42, 0.52))
    left = float(rng.uniform(0.14, 0.96 - width))
    top = float(rng.uniform(0.06, 0.94 - height - 0.05))
    canvas.paint(drawing.rectangle_mask(canvas, (left - 0.045, top), (left - 0.01, 0.98)), (200, 200, 200))
    colours = concept.attributes["colours"].split()
    for index, colour_name in enumerate(colours):
        if concept.attributes["orientation"] == "horizontal":
            corner_a = (left, top + height * index / 3)
            corner_b = (left + width, top + height * (index + 1) / 3)
        else:
            corner_a = (left + width * index / 3, top)
            corner_b = (left + width * (index + 1) / 3, top + height)
        stripe = drawing.rectangle_mask(canvas, corner_a, corner_b)
        canvas.paint(stripe, drawing.jitter_colour(COLOURS[colour_name], rng, 12))
    return canvas.finish(rng, pixel_noise=3.0), {"orientation": concept.attributes["orientation"]}


FLAGS = Domain(
    key="flags",
    description="a three-striped flag; the class is its colours in order and the stripe direction",
    base=(),
    new=tuple(
        ConceptSpec(f"{orientation} {' '.join(colours)} flag", {"colours": " ".join(colours), "orientation": orientation})
        for colours in FLAG_COLOURS
        for orientation in ("horizontal", "vertical")
    ),
    caption_templates=(
        "a {name}.",
        "a picture of a {name}.",
        "a drawing of a {name}.",
        "a {name} on a pole.",
        "a {name} against a grey sky.",
        "a striped {name}.",
    ),
    class_templates=GENERIC_CLASS_TEMPLATES,
    styles=("canonical",),
    draw=draw_flag,
)


# ----------------------------------------------------------------------------- spatial relations (retrieval)


def draw_relation(concept: ConceptSpec | None, style: str, rng: np.random.Generator, image_size: int) -> tuple[np.ndarray, Fields]:
    """Two different coloured shapes, one left of / right of / above / below the other."""
    canvas = Canvas(image_size)
    first = (pick(rng, BASE_COLOURS), pick(rng, BASE_SHAPES))
    second = first
    while second == first:
        second = (pick(rng, BASE_COLOURS), pick(rng, BASE_SHAPES))
    relation = pick(rng, tuple(RELATIONS))
    radius = float(rng.uniform(0.13, 0.17))
    near, far = float(rng.uniform(0.2, 0.3)), float(rng.uniform(0.7, 0.8))
    across = [float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7))]
    along = {"left of": (near, far), "right of": (far, near), "above": (near, far), "below": (far, near)}[relation]
    horizontal = relation in ("left of", "right of")
    for index, (colour_name, shape) in enumerate((first, second)):
        centre = (along[index], across[index]) if horizontal else (across[index], along[index])
        mask = drawing.shape_mask(canvas, shape, centre, radius, float(rng.uniform(-10, 10)))
        canvas.paint(mask, drawing.jitter_colour(COLOURS[colour_name], rng))
    fields = {"first": " ".join(first), "second": " ".join(second), "relation": relation, "inverse": RELATIONS[relation]}
    return canvas.finish(rng, pixel_noise=3.0), fields


RELATIONS_DOMAIN = Domain(
    key="relations",
    description="two coloured shapes in a spatial relation; each image has one true caption (retrieval)",
    base=(),
    new=(),
    caption_templates=(
        "a {first} {relation} a {second}.",
        "a {second} {inverse} a {first}.",
        "a picture of a {first} {relation} a {second}.",
        "a drawing of a {second} {inverse} a {first}.",
        "two shapes: a {first} {relation} a {second}.",
    ),
    class_templates=(),
    styles=("canonical",),
    draw=draw_relation,
)


DOMAINS: dict[str, Domain] = {
    domain.key: domain for domain in (SHAPES, SWATCHES, DIGITS, LETTERS, TEXTURES, COUNTS, ARROWS, FLAGS, RELATIONS_DOMAIN)
}
"""Every domain by key."""
