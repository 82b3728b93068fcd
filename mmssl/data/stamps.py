"""The stamps corpus: Tux Paint's rubber stamps, each described by one English sentence.

Source (fetched by :func:`fetch`): Debian ``tuxpaint-stamps-default`` (a 160 MB download; we keep
only ``usr/share/tuxpaint/stamps`` without its sound files, 38 MB). Each stamp is an image
``X.png`` and/or ``X.svg`` beside ``X.txt``, whose first line is the English description ("A blue
bicycle.") and whose other lines are translations (``de.utf8=Ein blaues Fahrrad.``). The folder
path gives ``category`` (``animals``) and ``subcategory`` (``birds``).

Skipped, counted by reason: images with no description (``X_mirror.png``, the pre-mirrored copy
Tux Paint shows when a stamp is flipped, has none) and descriptions with no image. When a stamp
exists as both PNG and SVG the PNG is used (the artist's own raster, no renderer involved).
``group`` is the normalised sentence, so stamps with the same description ("A flower.", six
different flowers) share a split. ``original`` says whether the image came from the PNG or the
SVG. Images are cached as 128×128 RGB PNGs in ``<corpus>/images``; a "colorable" stamp (white, tinted
by Tux Paint at run time) is drawn as its black silhouette.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from mmssl.data.clipart import title_key
from mmssl.data.corpus import finish_build, saved_report, spread_sample
from mmssl.data.fetch import DEB_SOURCES, fetch_deb
from mmssl.data.paths import corpus_dir, raw_dir
from mmssl.data.render import RenderJob, render_images
from mmssl.data.report import CorpusReport
from mmssl.data.splits import split_of

CORPUS = "stamps"
IMAGE_SUFFIXES = (".png", ".svg")  # in order of preference
ENGLISH_VARIANTS = ("en_GB.utf8", "en_AU.utf8")  # extra captions where they differ ("colour")
VARIANT_SUFFIXES = ("_mirror", "_flip")  # Tux Paint's pre-flipped copies of a stamp


def stamps_root() -> Path:
    source = DEB_SOURCES["stamps"]
    return raw_dir("deb") / source.package / source.keep[0]


def fetch() -> None:
    """Fetch the stamps (160 MB download, 38 MB kept); idempotent."""
    fetch_deb(DEB_SOURCES["stamps"])


def read_description(path: Path) -> tuple[str, list[str]]:
    """A stamp's ``.txt`` -> (English sentence, British/Australian variants that differ from it).

    Raises ``ValueError`` if the file is not UTF-8 or its first line is empty.
    """
    try:
        lines = path.read_text(encoding="utf-8").lstrip("\ufeff").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError("description not utf-8") from e
    sentence = " ".join(lines[0].split()) if lines else ""
    if not sentence:
        raise ValueError("empty description")
    variants = []
    for line in lines[1:]:
        key, _, text = line.partition("=")
        text = " ".join(text.split())
        if key.strip() in ENGLISH_VARIANTS and text and text != sentence and text not in variants:
            variants.append(text)
    return sentence, variants


def image_name(stem: str) -> str:
    """``"animals/birds/robin"`` -> ``"animals__birds__robin.png"``."""
    return stem.replace("/", "__") + ".png"


def build(out_dir: Path | None = None, *, force: bool = False, limit: int | None = None) -> CorpusReport:
    """Build the stamps corpus (fetching the source if needed) and return its report.

    Args:
        out_dir: corpus folder; default ``data/corpora/stamps``.
        force: rebuild the records even if a report exists (cached images are still reused).
        limit: keep only this many stamps, evenly spread over the folders; for fast tests.
    """
    out_dir = Path(out_dir) if out_dir is not None else corpus_dir(CORPUS)
    if not force and (saved := saved_report(out_dir, limit)):
        return saved

    started = time.perf_counter()
    fetch()
    root = stamps_root()
    report = CorpusReport(CORPUS)

    images: dict[str, Path] = {}  # stem relative to root -> preferred image file
    both = 0
    for suffix in IMAGE_SUFFIXES:
        for path in sorted(root.rglob(f"*{suffix}")):
            stem = path.relative_to(root).with_suffix("").as_posix()
            if stem in images:
                both += 1
            else:
                images[stem] = path
    for path in sorted(root.rglob("*.txt")):
        stem = path.relative_to(root).with_suffix("").as_posix()
        if stem not in images:
            report.skip("description without image", stem)

    stamps = []  # (stem, image path, sentence, variants)
    for stem in sorted(images):
        txt = root / f"{stem}.txt"
        if not txt.exists():
            variant = stem.endswith(VARIANT_SUFFIXES) and any(
                stem.removesuffix(s) in images for s in VARIANT_SUFFIXES)
            report.skip("no description (mirrored copy of a stamp)" if variant else "no description", stem)
            continue
        try:
            sentence, variants = read_description(txt)
        except ValueError as e:
            report.skip(str(e), stem)
            continue
        stamps.append((stem, images[stem], sentence, variants))
    found = len(stamps)
    if limit is not None and limit < len(stamps):
        report.extra["not_selected_by_limit"] = len(stamps) - limit
        stamps = spread_sample(stamps, limit)

    image_dir = out_dir / "images"
    jobs = [RenderJob(out=str(image_dir / image_name(stem)), where=stem, src=str(path))
            for stem, path, _, _ in stamps]
    render_started = time.perf_counter()
    ok = render_images(jobs, report, desc="rendering stamps")
    render_seconds = time.perf_counter() - render_started

    records = []
    for (stem, path, sentence, variants), job in zip(stamps, jobs):
        if job.out not in ok:
            continue
        folders = stem.split("/")[:-1]
        group = title_key(sentence)
        records.append({
            "id": f"stamps:{stem}", "image": f"images/{image_name(stem)}", "text": sentence,
            "captions": [sentence, *variants], "group": group, "split": split_of(group), "source": CORPUS,
            "category": folders[0] if folders else None,
            "subcategory": folders[1] if len(folders) > 1 else None,
            "original": path.suffix.lstrip("."),
        })
    return finish_build(records, report, out_dir, started,
        stamps_with_description=found,
        stamps_in_png_and_svg=both,
        categories=dict(Counter(r["category"] or "none" for r in records).most_common()),
        render_seconds=round(render_seconds, 2),
        limit=limit,
        sources={"stamps": _fetched_marker()},
        licence="GPL-2 (Tux Paint stamps; see the package's debian/copyright)")


def _fetched_marker() -> str:
    marker = raw_dir("deb") / DEB_SOURCES["stamps"].package / ".fetched"
    return marker.read_text().strip() if marker.exists() else ""
