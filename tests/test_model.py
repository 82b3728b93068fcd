"""``mmssl.load_model``: list-in, array-out encoders over a saved dual encoder (tiny random models)."""

import time

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import save_tiny_code_model, save_tiny_image_model, stdlib_pairs

import mmssl
from mmssl.data.imageio import ImageDecodeError


@pytest.fixture(scope="module")
def image_model_dir(tmp_path_factory):
    return save_tiny_image_model(tmp_path_factory.mktemp("models") / "clip-tiny")


@pytest.fixture(scope="module")
def code_model_dir(tmp_path_factory):
    return save_tiny_code_model(tmp_path_factory.mktemp("models") / "code-tiny")


@pytest.fixture(scope="module")
def image_model(image_model_dir):
    return mmssl.load_model(image_model_dir, device="cpu")


@pytest.fixture(scope="module")
def code_model(code_model_dir):
    return mmssl.load_model(code_model_dir, device="cpu")


@pytest.fixture(scope="module")
def pictures():
    """Five distinct images: RGB and RGBA, square and not, one larger than the 128 px corpus format."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)) for _ in range(2)]
    images.append(Image.new("RGBA", (90, 40), (255, 0, 0, 128)))
    images.append(Image.new("RGB", (300, 200), (0, 40, 200)))
    images.append(Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), mode="L"))
    return images


def _assert_unit_rows(vectors: np.ndarray, n: int, dim: int = 32):
    assert vectors.shape == (n, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_kind_dim_repr_and_lazy_export(image_model, code_model):
    assert image_model.kind == "image-text" and code_model.kind == "code"
    assert image_model.embed_dim == code_model.embed_dim == 32
    assert "image-text" in repr(image_model) and "vit-tiny-64" in repr(image_model)
    assert mmssl.RetrievalModel is type(image_model)


def test_text_embeddings_unit_deterministic_order_preserved(image_model, code_model):
    captions = ["grinning face", "red apple", "a blue bicycle parked by a wall", "cat", "fire truck"]
    for model in (image_model, code_model):
        first = model.encode_text(captions)
        _assert_unit_rows(first, len(captions))
        np.testing.assert_array_equal(first, model.encode_text(captions))
        np.testing.assert_allclose(model.encode_text(captions[::-1])[::-1], first, atol=1e-5)
        np.testing.assert_allclose(model.encode_text(captions, batch_size=2), first, atol=1e-5)
        assert not np.allclose(first[0], first[1], atol=1e-3)  # distinct inputs, distinct rows
        assert model.encode_text([]).shape == (0, 32)


def test_same_embeddings_after_reload(image_model_dir, code_model_dir, image_model, code_model, pictures):
    pairs = stdlib_pairs(6)
    docstrings, codes = [d for d, _ in pairs], [c for _, c in pairs]
    again = mmssl.load_model(code_model_dir, device="cpu")
    np.testing.assert_array_equal(again.encode_code(codes), code_model.encode_code(codes))
    np.testing.assert_array_equal(again.encode_text(docstrings), code_model.encode_text(docstrings))
    assert again.fingerprint == code_model.fingerprint
    again = mmssl.load_model(image_model_dir, device="cpu")
    np.testing.assert_array_equal(again.encode_image(pictures), image_model.encode_image(pictures))
    assert again.fingerprint == image_model.fingerprint


def test_fingerprint_is_stable_and_tracks_the_weights(tmp_path, code_model_dir, code_model):
    assert code_model.fingerprint.startswith("sha256:") and len(code_model.fingerprint) == 7 + 16
    other = mmssl.load_model(save_tiny_code_model(tmp_path / "other", seed=1), device="cpu")
    assert other.fingerprint != code_model.fingerprint
    # a copy of the same folder elsewhere is the same model
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in code_model_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert mmssl.load_model(copy, device="cpu").fingerprint == code_model.fingerprint


def test_images_from_paths_and_pil_give_the_same_rows(tmp_path, image_model, pictures):
    paths = []
    for i, picture in enumerate(pictures):
        paths.append(tmp_path / f"{i}.png")
        picture.save(paths[-1])
    from_pil = image_model.encode_image(pictures)
    _assert_unit_rows(from_pil, len(pictures))
    mixed = [str(paths[0]), paths[1], pictures[2], str(paths[3]), paths[4]]
    np.testing.assert_allclose(image_model.encode_image(mixed, batch_size=2), from_pil, atol=1e-5)
    np.testing.assert_allclose(image_model.encode_image(pictures[::-1])[::-1], from_pil, atol=1e-5)


def test_code_embeddings_and_a_huge_function(code_model):
    codes = [code for _, code in stdlib_pairs(20)]
    vectors = code_model.encode_code(codes)
    _assert_unit_rows(vectors, len(codes))
    np.testing.assert_allclose(code_model.encode_code(codes[::-1])[::-1], vectors, atol=1e-5)
    huge = "def f(x):\n" + "    x = x + 1  # padding\n" * 4200  # > 100k characters
    assert len(huge) > 100_000
    start = time.perf_counter()
    out = code_model.encode_code([huge, codes[0]])
    assert time.perf_counter() - start < 2.0
    _assert_unit_rows(out, 2)
    np.testing.assert_allclose(out[1], vectors[0], atol=1e-5)


def test_wrong_method_for_the_kind_names_the_right_one(image_model, code_model, pictures):
    with pytest.raises(ValueError, match="image-text model.*encode_image.*encode_text"):
        image_model.encode_code(["def f(): pass"])
    with pytest.raises(ValueError, match="code model.*encode_code.*encode_text"):
        code_model.encode_image(pictures[:1])


def test_bad_inputs_raise_clear_errors(tmp_path, image_model, code_model):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good = tmp_path / "good.png"
    Image.new("RGB", (128, 128), "white").save(good)
    with pytest.raises(ImageDecodeError, match="broken.png"):
        image_model.encode_image([good, broken, good])
    with pytest.raises(ImageDecodeError, match="missing.png: no such file"):
        image_model.encode_image([tmp_path / "missing.png"])
    for model in (image_model, code_model):
        with pytest.raises(ValueError, match="item 1 is an empty or whitespace-only text"):
            model.encode_text(["a cat", "  \n"])
        with pytest.raises(ValueError, match="item 0 is an empty"):
            model.encode_text([""])
        with pytest.raises(TypeError, match="list of strings"):
            model.encode_text("a cat")
    with pytest.raises(ValueError, match="empty or whitespace-only code"):
        code_model.encode_code(["def f():\n    return 1", ""])
    with pytest.raises(TypeError, match="item 0 is a int"):
        image_model.encode_image([3])


def test_load_model_errors(tmp_path, code_model_dir):
    with pytest.raises(FileNotFoundError, match="no model at"):
        mmssl.load_model(tmp_path / "nope")
    with pytest.raises(ValueError, match="no dual encoder"):
        mmssl.load_model(tmp_path)


def test_default_device_is_cuda_when_present(code_model_dir):
    model = mmssl.load_model(code_model_dir)
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_read_model_card_of_the_release_model_and_of_broken_folders(tmp_path, image_model_dir):
    import json
    from pathlib import Path

    from mmssl.eval.evaluate import format_table
    from mmssl.model import MODEL_CARD_FACTS, read_model_card

    release = Path(__file__).resolve().parents[1] / "models" / "clip-default"
    card = read_model_card(release)
    manifest = json.loads((release / "manifest.json").read_text())
    assert list(card.facts) == [k for k in MODEL_CARD_FACTS if k in manifest] and card.facts["steps"] == manifest["steps"]
    assert card.metrics == manifest["metrics"] and "T>I R@1" in format_table(card.metrics)
    assert read_model_card(image_model_dir) is None  # saved by save_dual_encoder alone: no training manifest
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="manifest.json holds a list"):
        read_model_card(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json cannot be read"):
        read_model_card(tmp_path)
