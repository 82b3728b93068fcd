"""Views for the contrastive methods: SimCLR's image augmentations, code augmentations, and the
split views of multiview coding (luma vs chroma of an image; signature vs body vs docstring of a
function).

Images (Chen et al. 2020, appendix A): random resized crop (area 8-100% by default; SimCLR's
ImageNet 8% is kept), horizontal flip, colour jitter (strength 0.5 on tiny icons instead of 1.0:
a hue shift of 0.5 turns a red heart into a green one, and colour is most of what tells emoji
apart), random grayscale, Gaussian blur (kernel ~10% of the side), then the tower's normalisation.

Code (the semantics-preserving transforms of ContraCode, Jain et al. 2021, on Python ``tokenize``
spans so that everything not changed keeps its exact text):

* :func:`rename_identifiers`: parameters and local variables get fresh names, consistently;
* :func:`drop_statements`: single-line simple statements are deleted at random (a block keeps
  at least one statement, so the result still parses);
* :func:`strip_comments_and_docstrings`: comments and the function's docstring go.

Source that does not parse is returned unchanged (an augmentation never raises on user code).
Randomness comes from the ``random`` module (or a given ``random.Random``), which the trainer
seeds per sample (:class:`mmssl.train.sampler.SeededSamples`), so views are reproducible.
"""

from __future__ import annotations

import ast
import io
import keyword
import random
import tokenize
from dataclasses import dataclass
from typing import Callable

import torch
from PIL import Image
from torchvision import transforms

# ---------------------------------------------------------------------------------------------
# images


def simclr_image_transform(size: int, mean: tuple[float, ...], std: tuple[float, ...], *,
                           min_scale: float = 0.08, jitter: float = 0.5, grayscale_prob: float = 0.2,
                           blur_prob: float = 0.5) -> Callable[[Image.Image], torch.Tensor]:
    """SimCLR's augmentation: PIL image -> (3, size, size) normalised tensor."""
    kernel = max(3, int(0.1 * size) // 2 * 2 + 1)  # odd, ~10% of the side
    return transforms.Compose([
        _to_rgb,
        transforms.RandomResizedCrop(size, scale=(min_scale, 1.0), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.RandomApply([transforms.ColorJitter(0.8 * jitter, 0.8 * jitter, 0.8 * jitter, 0.2 * jitter)], p=0.8),
        transforms.RandomGrayscale(p=grayscale_prob),
        transforms.RandomApply([transforms.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=blur_prob),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def _to_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def luma_chroma_views(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Split an RGB image into a luma view and a chroma view, both RGB images (CMC's L vs ab).

    CMC (Tian et al. 2020) contrasts the L and ab channels of Lab (and Y vs DbDr of YDbDr). We
    split YCbCr the same way but keep both views in the towers' input space: the luma view is the
    grayscale image (Y in all three channels) and the chroma view is the image with Y set to mid
    grey (only Cb, Cr vary). An ordinary 3-channel tower encodes either view, so the luma
    encoder initialises an RGB tower as is (it has seen grayscale images, the common case of
    SimCLR's random-grayscale augmentation).
    """
    y, cb, cr = image.convert("YCbCr").split()
    luma = Image.merge("RGB", (y, y, y))
    chroma = Image.merge("YCbCr", (Image.new("L", image.size, 128), cb, cr)).convert("RGB")
    return luma, chroma


# ---------------------------------------------------------------------------------------------
# code

_NAME_POOL = ("value", "item", "data", "result", "obj", "arg", "tmp", "elem", "node", "key", "count", "text",
              "x", "y", "n", "i", "buf", "out", "var", "entry")


def _tokens(code: str) -> list[tokenize.TokenInfo] | None:
    try:
        return list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _replace_spans(code: str, edits: list[tuple[tuple[int, int], tuple[int, int], str]]) -> str:
    """Apply ``((row, col) start, (row, col) end, text)`` edits (1-based rows, as tokenize gives)."""
    lines = code.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    out, position = [], 0
    for (srow, scol), (erow, ecol), text in sorted(edits):
        begin, end = starts[srow - 1] + scol, starts[erow - 1] + ecol
        if begin < position:  # overlapping edit: keep the first
            continue
        out += [code[position:begin], text]
        position = end
    out.append(code[position:])
    return "".join(out)


def _local_names(tree: ast.Module) -> set[str]:
    """Parameters (but ``self``/``cls`` and keyword-only ones, which callers name) and names bound
    inside the functions of ``tree``."""
    names: set[str] = set()
    keyword_only: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            keyword_only.update(arg.arg for arg in args.kwonlyargs)
            for arg in [*args.posonlyargs, *args.args, args.vararg, args.kwarg]:
                if arg is not None:
                    names.add(arg.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names - keyword_only - {"self", "cls"} - set(keyword.kwlist)


def rename_identifiers(code: str, rng: random.Random | None = None, prob: float = 1.0) -> str:
    """Rename each parameter and local variable (with probability ``prob``) to a fresh name.

    A name is renamed everywhere it stands alone; never after a ``.`` (attribute) nor as a
    keyword argument of a call (``f(key=...)``), so the result runs the same.
    """
    rng = rng or random
    tree, tokens = _parse(code), _tokens(code)
    if tree is None or tokens is None:
        return code
    candidates = sorted(_local_names(tree))
    chosen = [name for name in candidates if rng.random() < prob]
    if not chosen:
        return code
    taken = {t.string for t in tokens if t.type == tokenize.NAME}
    mapping = {}
    for name in chosen:
        new = rng.choice(_NAME_POOL)
        while new in taken:
            new = f"{rng.choice(_NAME_POOL)}{rng.randrange(100)}"
        taken.add(new)
        mapping[name] = new
    edits = []
    depth, in_header = 0, False
    previous = None
    for position, token in enumerate(tokens):
        if token.type == tokenize.NAME and token.string in ("def", "lambda"):
            in_header = True
        if token.type == tokenize.OP:
            depth += token.string in "([{"
            depth -= token.string in ")]}"
            if token.string == ":" and depth == 0:
                in_header = False
        if token.type == tokenize.NAME and token.string in mapping:
            after_dot = previous is not None and previous.string == "."
            following = next((t for t in tokens[position + 1:] if t.type not in (tokenize.NL, tokenize.COMMENT)), None)
            call_keyword = depth > 0 and not in_header and following is not None and following.string == "="
            if not (after_dot or call_keyword):
                edits.append((token.start, token.end, mapping[token.string]))
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token
    return _replace_spans(code, edits)


def drop_statements(code: str, prob: float = 0.1, rng: random.Random | None = None) -> str:
    """Delete single-line simple statements with probability ``prob`` each; blocks keep one."""
    rng = rng or random
    tree = _parse(code)
    if tree is None or prob <= 0:
        return code
    lines = code.splitlines(keepends=True)
    statements_on_line: dict[int, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            statements_on_line[node.lineno] = statements_on_line.get(node.lineno, 0) + 1
    drop: set[int] = set()
    for node in ast.walk(tree):
        for block_name in ("body", "orelse", "finalbody"):
            block = getattr(node, block_name, None)
            if not isinstance(block, list) or not block or not isinstance(block[0], ast.stmt):
                continue
            droppable = [s for s in block if s.lineno == s.end_lineno and statements_on_line[s.lineno] == 1
                         and not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                         and not isinstance(node, ast.Module)]
            picked = [s for s in droppable if rng.random() < prob]
            if len(picked) == len(block):  # a block must keep one statement
                picked = picked[:-1]
            drop.update(s.lineno for s in picked)
    if not drop:
        return code
    return "".join(line for row, line in enumerate(lines, start=1) if row not in drop)


def strip_comments_and_docstrings(code: str) -> str:
    """Remove ``#`` comments and function/class docstrings (a body left empty gets ``pass``)."""
    tree, tokens = _parse(code), _tokens(code)
    if tree is None or tokens is None:
        return code
    edits = [(t.start, t.end, "") for t in tokens if t.type == tokenize.COMMENT]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                replacement = "pass" if len(node.body) == 1 else ""
                edits.append(((first.lineno, first.col_offset), (first.end_lineno, first.end_col_offset), replacement))
    stripped = _replace_spans(code, edits)
    kept = [line for line in stripped.splitlines() if line.strip()]  # lines emptied by the edits
    return "\n".join(kept) if _parse("\n".join(kept)) is not None else code


@dataclass
class CodeAugmentConfig:
    """Probabilities of each code augmentation (all applied in sequence, independently)."""

    rename_prob: float = 0.5  # per identifier
    drop_prob: float = 0.1  # per simple statement
    strip_prob: float = 0.5  # chance to remove comments and docstrings


class CodeAugmenter:
    """``augment(code) -> code``: strip, drop, rename, each at random (see :class:`CodeAugmentConfig`)."""

    def __init__(self, config: CodeAugmentConfig | None = None):
        self.config = config or CodeAugmentConfig()

    def __call__(self, code: str, rng: random.Random | None = None) -> str:
        rng = rng or random
        c = self.config
        if rng.random() < c.strip_prob:
            code = strip_comments_and_docstrings(code)
        code = drop_statements(code, c.drop_prob, rng)
        return rename_identifiers(code, rng, c.rename_prob)


def function_views(code: str, docstring: str = "") -> dict[str, str]:
    """CMC views of one function: ``signature`` (the ``def`` header), ``body`` (the rest) and
    ``docstring`` (given, else the function's own). Unparseable code: all of it is the body."""
    tree = _parse(code)
    function = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None) \
        if tree is not None else None
    if function is None or not function.body:
        return {"signature": "", "body": code, "docstring": docstring}
    docstring = docstring or ast.get_docstring(function) or ""
    lines = code.splitlines()
    first = function.body[0]
    header_end = body_start = first.lineno - 1
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str) \
            and len(function.body) > 1:
        body_start = function.body[1].lineno - 1  # the docstring is its own view
    if header_end == function.lineno - 1:  # "def f(x): return x" on one line
        line = lines[header_end]
        return {"signature": line[:first.col_offset].rstrip(), "body": line[first.col_offset:], "docstring": docstring}
    return {"signature": "\n".join(lines[:header_end]), "body": "\n".join(lines[body_start:]),
            "docstring": docstring}
