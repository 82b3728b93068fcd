"""Views: SimCLR image augmentation, luma/chroma split, and the code augmentations on real stdlib code."""

import ast
import random

import numpy as np
import pytest
import torch
from PIL import Image

from mmssl.contrastive.augment import (CodeAugmenter, drop_statements, function_views, luma_chroma_views,
                                       rename_identifiers, simclr_image_transform, strip_comments_and_docstrings)

SOURCE = '''def scale(values, factor=2, *, offset=0):
    """Scale every value.

    More words.
    """
    # a comment
    result = []
    for value in values:
        scaled = value * factor  # inline
        result.append(scaled + offset)
    total = sum(result)
    helper = dict(factor=factor)
    return result, total, helper['factor']
'''


def _run(source: str, *args, **kwargs):
    namespace = {}
    exec(compile(source, "<test>", "exec"), namespace)
    function = next(v for k, v in namespace.items() if callable(v) and k != "__builtins__")
    return function(*args, **kwargs)


def test_simclr_transform_makes_two_different_normalised_views(emoji_images):
    images, _ = emoji_images
    transform = simclr_image_transform(64, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    image = Image.fromarray(images[0])
    torch.manual_seed(0)
    first, second = transform(image), transform(image)
    assert first.shape == second.shape == (3, 64, 64)
    assert not torch.allclose(first, second)
    assert -2.1 <= float(first.min()) and float(first.max()) <= 2.1  # (x - 0.5) / 0.25 for x in [0, 1]


def test_luma_view_is_gray_and_chroma_view_has_constant_luma(emoji_images):
    image = Image.fromarray(emoji_images[0][3])
    luma, chroma = luma_chroma_views(image)
    y = np.asarray(image.convert("YCbCr"))[..., 0]
    luma = np.asarray(luma).astype(int)
    assert (luma[..., 0] == luma[..., 1]).all() and (luma[..., 1] == luma[..., 2]).all()
    assert np.abs(luma[..., 0] - y).max() <= 1
    chroma_y = np.asarray(chroma.convert("YCbCr"))[..., 0].astype(int)
    # luma is gone up to RGB rounding and the clipping of saturated colours
    assert np.median(np.abs(chroma_y - 128)) <= 1 and chroma_y.std() < 0.1 * y.std()
    assert np.asarray(chroma).std() > 0  # the colour is still there


def test_rename_identifiers_keeps_behaviour_and_renames_locals():
    renamed = rename_identifiers(SOURCE, random.Random(3), prob=1.0)
    assert renamed != SOURCE
    tree = ast.parse(renamed)
    function = tree.body[0]
    assert function.name == "scale"  # the function's own name is not a local
    new_args = [a.arg for a in function.args.args]
    assert "values" not in new_args and "factor" not in new_args
    assert function.args.kwonlyargs[0].arg == "offset"  # callers name keyword-only parameters
    assert "dict(factor=" in renamed  # a call's keyword argument is not renamed
    assert "# a comment" in renamed and "More words." in renamed  # the rest keeps its exact text
    assert _run(renamed, [1, 2], 3, offset=1) == _run(SOURCE, [1, 2], 3, offset=1)


def test_rename_identifiers_leaves_attributes_alone():
    source = "def f(path):\n    node = path.node\n    return node.path + path\n"
    renamed = rename_identifiers(source, random.Random(0))
    assert renamed != source and "(path)" not in renamed and "node =" not in renamed  # locals renamed
    assert renamed.count(".path") == 1 and renamed.count(".node") == 1  # attributes kept


def test_drop_statements_keeps_code_parseable_and_one_statement_per_block():
    dropped = drop_statements(SOURCE, prob=1.0, rng=random.Random(0))
    function = ast.parse(dropped).body[0]
    assert len(function.body) >= 1 and dropped.count("\n") < SOURCE.count("\n")
    loop = next(n for n in ast.walk(function) if isinstance(n, ast.For))
    assert len(loop.body) == 1
    assert drop_statements(SOURCE, prob=0.0) == SOURCE


def test_strip_comments_and_docstrings():
    stripped = strip_comments_and_docstrings(SOURCE)
    assert "#" not in stripped and "Scale every value" not in stripped
    assert _run(stripped, [1], 2) == _run(SOURCE, [1], 2)
    assert strip_comments_and_docstrings('def f():\n    """Only a docstring."""\n') == "def f():\n    pass"


def test_augmentations_never_raise_on_unparseable_code():
    broken = "def f(:\n    return ("
    assert rename_identifiers(broken) == broken
    assert drop_statements(broken, 1.0) == broken
    assert strip_comments_and_docstrings(broken) == broken
    assert function_views(broken)["body"] == broken


def test_code_augmenter_on_real_functions_gives_parseable_varied_code(stdlib_functions):
    augment = CodeAugmenter()
    rng = random.Random(0)
    changed = 0
    for record in stdlib_functions[:60]:
        out = augment(record["code"], rng)
        ast.parse(out)
        changed += out != record["code"]
    assert changed >= 45


@pytest.mark.parametrize("source, expected", [
    ('def f(x: int) -> int: return x', {"signature": "def f(x: int) -> int:", "body": "return x"}),
    ('@deco\ndef f(a,\n      b):\n    """Doc here."""\n    return a + b',
     {"signature": "@deco\ndef f(a,\n      b):", "body": "    return a + b", "docstring": "Doc here."}),
])
def test_function_views(source, expected):
    views = function_views(source)
    for key, value in expected.items():
        assert views[key] == value
