"""SynthFashion: a deterministic, procedural renderer of garment images.

Why a synthetic dataset?
    Real fine-grained fashion datasets (FashionAI, DARN, DeepFashion) are large, need
    downloads and licences, and take hours to train on. SynthFashion draws small garment
    pictures in milliseconds, on any machine, with *known* attribute labels, so every
    idea of the package (attribute-specific embeddings, retrieval by attribute, learning
    attributes one increment at a time, forgetting) can be tried in minutes on a CPU.

What is drawn?
    A front view of a simple faceless mannequin, as in a shop photo: head and neck, two
    arms hanging slightly outwards, torso and legs, all in one skin tone.
    Over it, one garment (a top or a dress) described by six attributes, in the spirit
    of the FashionAI attribute set (see :data:`ATTRIBUTES`):

    * ``sleeve_length``: how far down the arm the sleeve goes (skin shows below it;
      a sleeveless garment has cut-in armholes);
    * ``neckline``: the shape cut out at the top (round, V, square, boat) or a high
      collar covering the neck;
    * ``length``: where the garment's bottom edge (the hem) lies on the body, from a
      cropped top above the waist to an ankle-length dress;
    * ``silhouette``: how the garment's width changes from shoulders to hem (fitted with
      a waist, straight and boxy, A-line widening steadily, flared from the waist);
    * ``colour``: the garment's dominant hue;
    * ``pattern``: solid or a print (stripes, dots, checks, diagonals) drawn in a
      lighter or darker shade of the same colour, so the colour stays dominant.

    The first four are *shape* attributes: they can only be read from the outline of
    the garment, not from any single pixel or from the average colour of the picture.

Nuisance variation
    A model should learn the attributes, not shortcuts. So every image also gets random
    nuisances, drawn independently of the labels: position jitter, scale, a small
    rotation (up to 15 degrees either way), the background (a desaturated grey, beige or
    cool-grey tone, with a gradient and a light mottled texture, darker than any white
    garment and lighter than any black one), the skin tone, the lighting (brightness,
    a slight tint and a shading gradient across the figure), the size and phase of the
    print, and per-pixel noise.

How is it drawn?
    Shapes are polygons in *figure coordinates*: x from left to right, y from the head
    (about 0) down to the ankles (about 1), with the figure centred on x = 0.5. A random
    similarity transform (scale, rotation, shift) maps them to pixels. Pillow draws the
    polygons into a "part map" (background / skin / garment / seam) at twice the
    requested size; numpy colours each part (the print is computed in figure
    coordinates, so it rotates and scales with the garment); each 2 x 2 block of pixels
    is then averaged into one output pixel, which smooths the edges (antialiasing), and
    noise is added. About 1 ms per 64 x 64 image on one CPU core.

Determinism
    Image ``i`` of ``render(n, size, seed)`` uses its own generator
    ``np.random.default_rng([seed, i])``, so the output depends only on
    ``(size, seed, i)``: ``render(1000)[:100]`` equals ``render(100)``, and the same
    image at another size has the same labels, pose and colours (below 56 pixels the
    print is enlarged so that it stays readable).
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["ATTRIBUTES", "STYLES", "render", "render_one"]

# ---------------------------------------------------------------------------- attributes

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "sleeve_length": ("sleeveless", "cap", "short", "elbow", "three_quarter", "long"),
    "neckline": ("round", "v_neck", "square", "high", "boat"),
    "length": ("cropped", "hip", "thigh", "knee", "ankle"),
    "silhouette": ("fitted", "straight", "a_line", "flared"),
    "colour": ("red", "orange", "yellow", "green", "blue", "purple", "black", "white"),
    "pattern": ("solid", "h_stripes", "v_stripes", "dots", "checks", "diagonal"),
}

# ---------------------------------------------------------------------------- the figure
# All lengths below are in figure coordinates (see the module docstring).

SHOULDER_Y = 0.13          # top edge of the garment
SHOULDER = 0.14            # half-distance between the two shoulder joints
WRIST = 0.26               # half-distance between the two wrists
WRIST_Y = 0.58

# fraction of the arm (shoulder joint -> wrist) covered by the sleeve
SLEEVE_FRACTION = {"sleeveless": 0.0, "cap": 0.17, "short": 0.36, "elbow": 0.56,
                   "three_quarter": 0.77, "long": 1.0}
SLEEVE_WIDTH = (0.060, 0.050)  # half-widths at the shoulder and at the sleeve's end (wider than the arm)

# y of the hem
HEM_Y = {"cropped": 0.36, "hip": 0.50, "thigh": 0.63, "knee": 0.77, "ankle": 0.95}

# half-width of the garment body at fractions t = 0 (shoulders) ... 1 (hem) of its
# height: the profile is relative to the garment, so it is visible at every length
PROFILE_T = (0.0, 0.2, 0.5, 0.8, 1.0)
PROFILE = {
    "fitted": (0.150, 0.122, 0.080, 0.100, 0.090),   # bust, narrow waist, pencil skirt
    "straight": (0.155, 0.158, 0.160, 0.160, 0.160),  # boxy: as wide as the shoulders
    "a_line": (0.140, 0.145, 0.200, 0.260, 0.300),   # widening steadily
    "flared": (0.150, 0.115, 0.088, 0.230, 0.370),   # fitted bodice, then a wide flare
}

# garment colours (RGB, before lighting)
COLOURS = {
    "red": (200, 30, 38), "orange": (240, 122, 22), "yellow": (236, 202, 34),
    "green": (38, 150, 62), "blue": (36, 78, 196), "purple": (124, 46, 156),
    "black": (30, 30, 33), "white": (238, 238, 232),
}

# below this image size the print is enlarged (see _pattern_mask)
PRINT_MIN_SIZE = 80

# Visual domains: each increment of a plan can bring photographs from another source (as
# FashionAI, DeepFashion and DARN do). A domain changes the backdrop, the light and the
# camera noise, never the garment: the labels mean the same in every domain.
DOMAINS = (
    {"name": "studio grey"},
    {"name": "warm beige", "bg_shift": 25.0, "bg_tint": 14.0, "brightness": 1.05},
    {"name": "cool dark", "bg_shift": -30.0, "bg_tint": -8.0, "brightness": 0.92},
    {"name": "phone camera", "noise": 2.0, "light": 2.0},
    {"name": "washed out", "bg_shift": 15.0, "brightness": 1.1, "noise": 0.5},
)

SKIN_TONES = np.array([(246, 214, 188), (226, 184, 150), (198, 146, 108),
                       (150, 102, 72), (100, 68, 48)], dtype=np.float32)

# the figure centre: the point kept in the middle of the picture (before jitter)
FIGURE_CENTRE = np.array([0.5, 0.47])

BACKGROUND, SKIN, GARMENT, SEAM = 0, 1, 2, 3   # values of the part map

# ---------------------------------------------------------------------------- styles
# A style is one calibration of the renderer: the figure's proportions, the garment's
# shapes, the print and the nuisance ranges. "v1" is the constants above (the images
# every result so far was made with, byte for byte); "v2" is recalibrated so that every
# attribute is readable at 48 pixels (benchmarks/bench_learnable.py measures it):
#
# * the arms hang out in an "A" pose and are thicker, so a sleeve's end is seen against
#   the background instead of against the garment's own body;
# * garment edges (the sleeve's end, the neckline, the hem) get a dark trim one output
#   pixel wide, so a cut-out shows even when the garment's colour is close to the skin's;
# * larger, more different necklines; wider differences between silhouettes;
# * a coarser, higher-contrast print (about 6 pixels per period at 48 pixels);
# * a larger figure in the frame, and milder nuisances (rotation up to 6 degrees, less
#   shift, noise and shading), still drawn independently of the labels.
#
# Every style draws the same random numbers in the same order, so image i of a seed has
# the same labels (and the same skin tone, background, ...) in every style.
STYLES: dict[str, dict] = {
    "v1": {
        "shoulder_y": SHOULDER_Y, "shoulder": SHOULDER, "wrist": WRIST, "wrist_y": WRIST_Y,
        "arm_width": (0.036, 0.024), "hand": (0.027, 0.035),
        "sleeve_fraction": SLEEVE_FRACTION, "sleeve_width": SLEEVE_WIDTH,
        "hem_y": HEM_Y, "profile": PROFILE,
        "necklines": {"round": ("ellipse", 0.0, 0.075, 0.075),
                      "v_neck": ("polygon", ((0.42, -0.01), (0.58, -0.01), (0.5, 0.17))),
                      "square": ("polygon", ((0.43, -0.01), (0.57, -0.01), (0.57, 0.095), (0.43, 0.095))),
                      "boat": ("ellipse", -0.005, 0.13, 0.042)},
        "collar": ((0.455, 0.05), (0.545, 0.05), (0.55, SHOULDER_Y + 0.02), (0.45, SHOULDER_Y + 0.02)),
        "armhole": (0.178, 0.01, 0.05, 0.085),   # x offset, y offset, rx, ry
        "seam_width": 1, "seam_shade": 0.7,       # seam line width on the 2x canvas; its darkening
        "print_min_size": PRINT_MIN_SIZE, "print_contrast": 0.55, "dot_radius": 0.27,
        "scale": (0.78, 0.94), "angle": 15.0, "shift": 0.06, "noise": (1.5, 5.0), "light": (0.03, 0.10),
        "centre": (0.5, 0.47),
    },
}
STYLES["v2"] = {
    **STYLES["v1"],
    "shoulder": 0.15, "wrist": 0.37, "wrist_y": 0.53,
    "arm_width": (0.046, 0.032), "hand": (0.032, 0.040),
    "sleeve_fraction": {"sleeveless": 0.0, "cap": 0.2, "short": 0.4, "elbow": 0.6,
                        "three_quarter": 0.8, "long": 1.0},
    "sleeve_width": (0.070, 0.058),
    "profile": {
        "fitted": (0.150, 0.118, 0.075, 0.090, 0.080),
        "straight": (0.165, 0.170, 0.172, 0.172, 0.172),
        "a_line": (0.135, 0.155, 0.225, 0.300, 0.345),
        "flared": (0.150, 0.108, 0.078, 0.270, 0.430),
    },
    "necklines": {"round": ("ellipse", 0.005, 0.095, 0.095),
                  "v_neck": ("polygon", ((0.405, -0.01), (0.595, -0.01), (0.5, 0.24))),
                  "square": ("polygon", ((0.405, -0.01), (0.595, -0.01), (0.595, 0.14), (0.405, 0.14))),
                  "boat": ("ellipse", -0.01, 0.165, 0.048)},
    "collar": ((0.44, 0.045), (0.56, 0.045), (0.57, SHOULDER_Y + 0.035), (0.43, SHOULDER_Y + 0.035)),
    "armhole": (0.19, 0.01, 0.06, 0.10),
    "seam_width": 2, "seam_shade": 0.45,
    "print_min_size": 96, "print_contrast": 0.7, "dot_radius": 0.3,
    "scale": (0.86, 0.96), "angle": 6.0, "shift": 0.03, "noise": (1.0, 3.0), "light": (0.02, 0.06),
    "centre": (0.5, 0.47),
}


def check_style(style: str) -> dict:
    """The settings of renderer style ``style`` (:data:`STYLES`), or ValueError naming the choices."""
    if not isinstance(style, str) or style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {list(STYLES)}")
    return STYLES[style]


_style = check_style


def _ellipse(cx: float, cy: float, rx: float, ry: float, k: int = 20) -> np.ndarray:
    """An ellipse as a polygon of ``k`` points (so that it can be rotated)."""
    a = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def _mirror(points) -> np.ndarray:
    """Mirror points about the figure's vertical axis x = 0.5."""
    p = np.array(points, dtype=float)
    p[:, 0] = 1.0 - p[:, 0]
    return p


def _limb(start, end, w_start: float, w_end: float) -> np.ndarray:
    """A quadrilateral from ``start`` to ``end`` with the given half-widths."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    d = end - start
    normal = np.array([-d[1], d[0]]) / np.hypot(*d)
    return np.array([start + w_start * normal, end + w_end * normal,
                     end - w_end * normal, start - w_start * normal])


def _arm(side: int, style: str = "v1"):
    """Shoulder joint and wrist of the left (side=-1) or right (side=+1) arm."""
    st = _style(style)
    return (np.array([0.5 + side * st["shoulder"], st["shoulder_y"] + 0.02]),
            np.array([0.5 + side * st["wrist"], st["wrist_y"]]))


def _body_polygons(style: str = "v1") -> list[np.ndarray]:
    """The skin-coloured mannequin: head, neck, torso, legs, arms and hands."""
    st = _style(style)
    torso = [(0.36, SHOULDER_Y), (0.40, 0.30), (0.415, 0.42), (0.39, 0.52)]
    leg = [(0.40, 0.50), (0.497, 0.50), (0.485, 0.98), (0.435, 0.98)]
    polys = [_ellipse(0.5, 0.0, 0.055, 0.072),                       # head
             np.array([(0.47, 0.04), (0.53, 0.04), (0.535, 0.16), (0.465, 0.16)]),  # neck
             np.concatenate([torso, _mirror(torso)[::-1]]),
             np.array(leg), _mirror(leg)]
    for side in (-1, 1):
        shoulder, wrist = _arm(side, style)
        direction = (wrist - shoulder) / np.hypot(*(wrist - shoulder))
        polys.append(_limb(shoulder, wrist, *st["arm_width"]))
        hand = wrist + 0.03 * direction
        polys.append(_ellipse(hand[0], hand[1], *st["hand"]))
    return polys


def _garment_polygons(sleeve: str, length: str, silhouette: str, style: str = "v1") -> list[np.ndarray]:
    """The garment body (its outline from the silhouette profile) and the two sleeves."""
    st = _style(style)
    top, hem = st["shoulder_y"], st["hem_y"][length]
    t = np.linspace(0.0, 1.0, 13)
    half = np.interp(t, PROFILE_T, st["profile"][silhouette])
    right = np.stack([0.5 + half, top + t * (hem - top)], axis=1)
    polys = [np.concatenate([_mirror(right), right[::-1]])]
    fraction = st["sleeve_fraction"][sleeve]
    width = st["sleeve_width"]
    if fraction > 0:
        for side in (-1, 1):
            shoulder, wrist = _arm(side, style)
            start = shoulder + 0.03 * (shoulder - wrist) / np.hypot(*(wrist - shoulder))
            end = shoulder + fraction * (wrist - shoulder)
            polys.append(_limb(start, end, width[0], width[1] + 0.006 * fraction))
    return polys


def _cut_polygons(sleeve: str, neckline: str, style: str = "v1") -> list[np.ndarray]:
    """Shapes where the garment is cut away to show the skin: neckline and armholes.
    Necklines (see :data:`STYLES`): ``("ellipse", dy, rx, ry)`` centred ``dy`` below the
    garment's top, or ``("polygon", points)`` with y measured down from the garment's top."""
    st = _style(style)
    top = st["shoulder_y"]
    cuts = []
    shape = st["necklines"].get(neckline)   # "high" has no cut: a collar (_collar_polygons)
    if shape is not None and shape[0] == "ellipse":  # round; boat: wide and shallow
        cuts.append(_ellipse(0.5, top + shape[1], shape[2], shape[3]))
    elif shape is not None:  # V, square
        cuts.append(np.array([(x, top + y) for x, y in shape[1]]))
    if sleeve == "sleeveless":  # armholes: the shoulders show
        dx, dy, rx, ry = st["armhole"]
        for side in (-1, 1):
            cuts.append(_ellipse(0.5 + side * dx, top + dy, rx, ry))
    return cuts


def _collar_polygons(neckline: str, style: str = "v1") -> list[np.ndarray]:
    """A high neckline: a collar covering the neck."""
    if neckline != "high":
        return []
    return [np.array(_style(style)["collar"])]


@functools.lru_cache(maxsize=None)
def _figure(sleeve: str, neckline: str, length: str, silhouette: str, style: str = "v1"):
    """Everything to draw, in order, as ``(points, layout)``: ``points`` stacks all the
    polygons' vertices (so that one matrix product moves them all) and ``layout`` lists
    ``(layer, number of vertices)`` per polygon. Layers: ``"skin"`` (the mannequin),
    ``"garment"``, ``"cut"`` (cut out of the garment to show the skin) and ``"collar"``
    (garment drawn over the neck). Cached: there are only 600 shape combinations per style."""
    layers = ([("skin", p) for p in _body_polygons(style)]
              + [("garment", p) for p in _garment_polygons(sleeve, length, silhouette, style)]
              + [("cut", p) for p in _cut_polygons(sleeve, neckline, style)]
              + [("collar", p) for p in _collar_polygons(neckline, style)])
    points = np.concatenate([p for _, p in layers]).astype(float)
    return points, [(layer, len(p)) for layer, p in layers]


# ---------------------------------------------------------------------------- nuisances


def _draw_labels(rng: np.random.Generator) -> dict[str, int]:
    """One value per attribute, uniformly and independently."""
    return {a: int(rng.integers(len(v))) for a, v in ATTRIBUTES.items()}


def _draw_nuisance(rng: np.random.Generator, style: str = "v1") -> dict:
    """Everything random about an image except its labels (always drawn in this order
    and all of it, whatever the labels and the style, so that two images rendered from
    the same generator state differ only where their labels differ)."""
    st = _style(style)
    light = rng.normal(size=2)
    grad = rng.normal(size=2)
    return {
        "scale": rng.uniform(*st["scale"]),
        "angle": np.deg2rad(rng.uniform(-st["angle"], st["angle"])),
        "shift": rng.uniform(-st["shift"], st["shift"], size=2),
        "bg_level": rng.uniform(90, 155),
        "bg_tint": rng.uniform(-6, 14),
        "bg_grad_dir": grad / (np.hypot(*grad) + 1e-9),
        "bg_grad": rng.uniform(0, 12),
        "bg_texture": rng.uniform(0, 5),
        "bg_texture_field": np.clip(rng.normal(size=(6, 6)), -2, 2),
        "skin": SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.93, 1.05),
        "brightness": rng.uniform(0.9, 1.1),
        "tint": rng.uniform(0.95, 1.05, size=3),
        "light_dir": light / (np.hypot(*light) + 1e-9),
        "light": rng.uniform(*st["light"]),
        "period": rng.uniform(0.068, 0.088),
        "phase": rng.uniform(0, 1, size=2),
        "diagonal_sign": rng.choice([-1.0, 1.0]),
        "noise": rng.uniform(*st["noise"]),
    }


def _transform(nz: dict, s: int, style: str = "v1"):
    """The matrix A and offset b mapping figure coordinates q to pixels p = A q + b."""
    c, si = np.cos(nz["angle"]), np.sin(nz["angle"])
    a = s * nz["scale"] * np.array([[c, -si], [si, c]])
    b = s * (0.5 + nz["shift"]) - a @ np.array(_style(style)["centre"])
    return a, b


def _pattern_mask(pattern: str, u: np.ndarray, v: np.ndarray, nz: dict, size: int,
                  style: str = "v1") -> np.ndarray:
    """Where the print is, as a boolean array, from figure coordinates (u, v).

    Below 80 pixels the print is enlarged so that its period stays about 5 pixels or
    more: a finer print turns into moire after downsampling, and a small CNN cannot tell
    stripes from checks or dots in it.
    """
    st = _style(style)
    p, (pu, pv) = nz["period"] * max(1.0, st["print_min_size"] / size), nz["phase"]
    if pattern == "solid":
        return np.zeros(u.shape, dtype=bool)
    if pattern == "h_stripes":
        return (v / p + pv) % 1.0 < 0.4
    if pattern == "v_stripes":
        return (u / p + pu) % 1.0 < 0.4
    if pattern == "diagonal":
        return ((u * nz["diagonal_sign"] + v) / (1.3 * p) + pu) % 1.0 < 0.4
    if pattern == "checks":
        return ((u / p + pu) % 1.0 < 0.5) ^ ((v / p + pv) % 1.0 < 0.5)
    if pattern == "dots":
        cell = 1.25 * p
        fu, fv = (u / cell + pu) % 1.0 - 0.5, (v / cell + pv) % 1.0 - 0.5
        return fu * fu + fv * fv < st["dot_radius"] ** 2
    raise AssertionError(pattern)


def _print_colour(base: np.ndarray, contrast: float = 0.55) -> np.ndarray:
    """A contrasting shade of the garment colour: lighter for dark colours, darker for
    light ones, so the hue (the ``colour`` label) stays the same."""
    luminance = base @ np.array([0.299, 0.587, 0.114])
    target = 255.0 if luminance < 140 else 0.0
    return base + contrast * (target - base)


# ---------------------------------------------------------------------------- rendering


def _apply_domain(nz: dict, domain: int) -> dict:
    """The nuisances of visual domain ``domain`` (see :data:`DOMAINS`); 0 changes nothing."""
    d = DOMAINS[domain % len(DOMAINS)]
    nz = dict(nz)
    nz["bg_level"] = float(np.clip(nz["bg_level"] + d.get("bg_shift", 0.0), 70, 175))
    nz["bg_tint"] = nz["bg_tint"] + d.get("bg_tint", 0.0)
    nz["brightness"] = nz["brightness"] * d.get("brightness", 1.0)
    nz["noise"] = nz["noise"] * d.get("noise", 1.0)
    nz["light"] = nz["light"] * d.get("light", 1.0)
    return nz


def _render(labels: dict[str, int], size: int, rng: np.random.Generator, domain: int = 0,
            style: str = "v1") -> np.ndarray:
    """Draw one image; ``labels`` must be complete and valid."""
    st = _style(style)
    names = {a: ATTRIBUTES[a][i] for a, i in labels.items()}
    nz = _apply_domain(_draw_nuisance(rng, style), domain)
    s = 2 * size                      # supersampled canvas
    a, b = _transform(nz, s, style)

    # 1. the part map (background / skin / garment / seam) at twice the size. Garment
    #    pieces get a one-pixel seam outline; cut-outs turn garment into skin, and
    #    their edge into seam.
    points, layout = _figure(names["sleeve_length"], names["neckline"], names["length"],
                             names["silhouette"], style)
    xy = (points @ a.T + b).ravel().tolist()    # Pillow wants flat x0, y0, x1, y1, ...
    part = Image.new("L", (s, s), BACKGROUND)
    cut = Image.new("L", (s, s), 0)
    draw, draw_cut = ImageDraw.Draw(part), ImageDraw.Draw(cut)
    start = 0
    for layer, k in layout:
        polygon, start = xy[start:start + 2 * k], start + 2 * k
        if layer == "skin":
            draw.polygon(polygon, fill=SKIN)
        elif layer == "cut":
            draw_cut.polygon(polygon, fill=1, outline=2, width=st["seam_width"])
        else:  # garment or collar
            draw.polygon(polygon, fill=GARMENT, outline=SEAM, width=st["seam_width"])
    part = np.asarray(part).copy()
    cut = np.asarray(cut)
    clothed = part >= GARMENT
    part[(cut == 1) & clothed] = SKIN
    part[(cut == 2) & clothed] = SEAM

    # 2. background: a 6 x 6 grid of desaturated tones (gradient + mottling), enlarged
    #    smoothly to the whole canvas
    grid = np.linspace(-1.0, 1.0, 6)
    gx, gy = nz["bg_grad_dir"]
    level = (nz["bg_level"] + nz["bg_grad"] * (gx * grid[None, :] + gy * grid[:, None])
             + nz["bg_texture"] * nz["bg_texture_field"])
    tones = level[..., None] + nz["bg_tint"] * np.array([1.0, 0.4, -0.8])  # beige or cool grey
    tones = Image.fromarray(np.clip(tones, 0, 255).astype(np.uint8), mode="RGB")
    img = np.asarray(tones.resize((s, s), Image.BILINEAR)).copy()

    # 3. the figure's pixels (flat indices) and their figure coordinates (u, v)
    idx = np.flatnonzero(part)
    kind = part.ravel()[idx]
    inv = np.linalg.inv(a)
    dx, dy = idx % s + (0.5 - b[0]), idx // s + (0.5 - b[1])
    u = inv[0, 0] * dx + inv[0, 1] * dy
    v = inv[1, 0] * dx + inv[1, 1] * dy

    # 4. colours from a small palette: skin, garment colour, print colour
    base = np.asarray(COLOURS[names["colour"]]) * nz["tint"]
    palette = np.stack([nz["skin"], base, _print_colour(base, st["print_contrast"])])
    on_garment = kind >= GARMENT
    printed = on_garment & _pattern_mask(names["pattern"], u, v, nz, size, style)
    colour = palette[on_garment.astype(np.intp) + printed]

    # 5. lighting shared by skin and garment: brightness and a shading gradient; seams
    #    are darker
    lx, ly = nz["light_dir"]
    cx, cy = st["centre"]
    shade = nz["brightness"] * (1.0 + 2 * nz["light"] * ((u - cx) * lx + (v - cy) * ly))
    shade[kind == SEAM] *= st["seam_shade"]
    img.reshape(-1, 3)[idx] = np.clip(colour * shade[:, None], 0, 255).astype(np.uint8)

    # 6. downsample (each pixel averages 2 x 2 samples: antialiasing) and add pixel
    #    noise (uniform, with standard deviation nz["noise"])
    img = np.asarray(Image.fromarray(img, mode="RGB").reduce(2), dtype=np.float32)
    noise = rng.random((size, size, 3), dtype=np.float32) - 0.5
    img += np.float32(nz["noise"] * 12 ** 0.5) * noise
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    return int(size)


def render(n: int, size: int = 64, seed: int = 0, domains=None,
           style: str = "v1") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``n`` random garments.

    Returns ``images``, uint8 ``(n, size, size, 3)``, and ``labels``, ``{attribute: int64
    array (n,)}`` indexing :data:`ATTRIBUTES` ``[attribute]``. Each attribute value is
    drawn uniformly and independently per image. Image ``i`` depends only on
    ``(size, seed, i)`` (and its domain), so the first ``k`` images of ``render(n)`` are
    ``render(k)``. ``domains``: an optional int per image, its visual domain (:data:`DOMAINS`).
    ``style``: the renderer's calibration (:data:`STYLES`); ``"v1"``, the default, draws the
    images every result so far was made with; the labels do not depend on it.
    """
    _style(style)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    size = _check_size(size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if domains is not None and len(domains) != n:
        raise ValueError(f"domains has {len(domains)} entries for {n} images")
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = {a: np.empty(n, dtype=np.int64) for a in ATTRIBUTES}
    for i in range(n):
        rng = np.random.default_rng([int(seed), i])
        lab = _draw_labels(rng)
        images[i] = _render(lab, size, rng, 0 if domains is None else int(domains[i]), style)
        for a, value in lab.items():
            labels[a][i] = value
    return images, labels


def render_one(labels: dict[str, int], size: int = 64,
               rng: np.random.Generator | None = None, style: str = "v1") -> np.ndarray:
    """Render one garment with the given attribute values, uint8 ``(size, size, 3)``.

    ``labels`` maps attribute names to value indices (value names such as ``"long"`` are
    accepted too); attributes left out are drawn at random. ``rng`` supplies the random
    attributes and the nuisances; it defaults to ``np.random.default_rng(0)``, so calls
    with the same generator state differ only in the attributes you change, e.g.::

        [render_one({"sleeve_length": k}) for k in range(len(ATTRIBUTES["sleeve_length"]))]

    shows every sleeve length on the same figure. ``render_one(labels_i,
    size, np.random.default_rng([seed, i]))`` reproduces image ``i`` of ``render``
    (``style``: see :func:`render`).
    """
    size = _check_size(size)
    _style(style)
    for attr, value in labels.items():
        if attr not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {attr!r}; known attributes: {list(ATTRIBUTES)}")
        values = ATTRIBUTES[attr]
        if isinstance(value, str):
            if value not in values:
                raise ValueError(f"unknown value {value!r} for attribute {attr!r}; "
                                 f"values: {list(values)}")
        elif (isinstance(value, bool) or not isinstance(value, (int, np.integer))
              or not 0 <= value < len(values)):
            raise ValueError(f"value index {value!r} out of range for attribute {attr!r}: "
                             f"expected 0..{len(values) - 1} ({list(values)})")
    rng = np.random.default_rng(0) if rng is None else rng
    full = _draw_labels(rng)
    for attr, value in labels.items():
        full[attr] = ATTRIBUTES[attr].index(value) if isinstance(value, str) else int(value)
    return _render(full, size, rng, style=style)
