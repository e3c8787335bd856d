"""Drawn product images for the synthetic catalogue, in the Kaggle layout.

Each image is a 360x540 JPEG: the article's colour as a garment-like silhouette on a
light background (a pattern drawn on it for stripes, dots and checks), with the product
type name and the article id as text. Flat shapes compress to a few kB, and drawing is
spread over processes because it is the slowest part of generating the demo data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 360, 540
BACKGROUND = (238, 236, 232)
JPEG_QUALITY = 70
JOBS_PER_TASK = 200


@dataclass(frozen=True)
class ImageJob:
    path: str  # absolute file path to write
    article_id: str
    product_type: str
    product_group: str
    appearance: str
    rgb: tuple[int, int, int]


def write_images(jobs: Sequence[ImageJob], workers: int | None = None) -> int:
    """Draw every job's image (in parallel when there are many); returns the number written."""
    for folder in {os.path.dirname(job.path) for job in jobs}:
        os.makedirs(folder, exist_ok=True)
    tasks = [jobs[i : i + JOBS_PER_TASK] for i in range(0, len(jobs), JOBS_PER_TASK)]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) <= 1:
        return sum(_draw_all(task) for task in tasks)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(_draw_all, tasks))


def _draw_all(jobs: Sequence[ImageJob]) -> int:
    for job in jobs:
        draw_image(job).save(job.path, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return len(jobs)


def draw_image(job: ImageJob) -> Image.Image:
    """The picture of one article."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    shape = _silhouette(job.product_group)
    garment = Image.new("RGB", (WIDTH, HEIGHT), job.rgb)
    _pattern(ImageDraw.Draw(garment), shape, job.appearance, _contrast(job.rgb))
    mask = Image.new("L", (WIDTH, HEIGHT), 0)
    ImageDraw.Draw(mask).polygon(shape, fill=255)
    image.paste(garment, mask=mask)  # the pattern stays inside the silhouette
    draw = ImageDraw.Draw(image)
    draw.polygon(shape, outline=(90, 90, 90))
    draw.text((WIDTH / 2, 455), job.product_type, fill=(40, 40, 40), font=_font(26), anchor="mm")
    draw.text((WIDTH / 2, 495), job.article_id, fill=(90, 90, 90), font=_font(20), anchor="mm")
    return image


def _silhouette(product_group: str) -> list[tuple[float, float]]:
    """A rough outline per product group: a top, trousers, a dress, a shoe, a bag..."""
    shapes = {
        "Garment Upper body": [
            (95, 60),
            (150, 45),
            (210, 45),
            (265, 60),
            (330, 150),
            (285, 180),
            (260, 140),
            (260, 400),
            (100, 400),
            (100, 140),
            (75, 180),
            (30, 150),
        ],
        "Garment Lower body": [
            (110, 50),
            (250, 50),
            (275, 400),
            (205, 400),
            (180, 150),
            (155, 400),
            (85, 400),
        ],
        "Garment Full body": [(140, 40), (220, 40), (235, 120), (300, 400), (60, 400), (125, 120)],
        "Shoes": [(60, 300), (60, 220), (130, 210), (190, 260), (300, 280), (310, 330), (60, 330)],
        "Accessories": [(90, 170), (130, 110), (230, 110), (270, 170), (290, 390), (70, 390)],
    }
    return shapes.get(product_group, [(120, 60), (240, 60), (265, 400), (95, 400)])


def _pattern(
    draw: ImageDraw.ImageDraw,
    shape: list[tuple[float, float]],
    appearance: str,
    colour: tuple[int, int, int],
) -> None:
    """Stripes, dots or checks over the silhouette's bounding box, kept sparse."""
    xs, ys = [p[0] for p in shape], [p[1] for p in shape]
    left, top, right, bottom = min(xs), min(ys), max(xs), max(ys)
    if appearance == "Stripe":
        for y in range(int(top), int(bottom), 28):
            draw.line([(left, y), (right, y)], fill=colour, width=6)
    elif appearance == "Dot":
        for y in range(int(top), int(bottom), 36):
            for x in range(int(left), int(right), 36):
                draw.ellipse([x, y, x + 10, y + 10], fill=colour)
    elif appearance == "Check":
        for y in range(int(top), int(bottom), 40):
            draw.line([(left, y), (right, y)], fill=colour, width=3)
        for x in range(int(left), int(right), 40):
            draw.line([(x, top), (x, bottom)], fill=colour, width=3)


def _contrast(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (30, 30, 30) if luminance > 140 else (235, 235, 235)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)
