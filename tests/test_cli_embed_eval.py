"""``python -m mmssl embed`` and ``eval`` on tiny real corpora (30 emoji, ~400 stdlib functions)."""

import json
import re
import shutil

import numpy as np
import pytest
from tiny_models import save_tiny_code_model, save_tiny_image_model

import mmssl
from mmssl.cli import main
from mmssl.data import code as code_corpus
from mmssl.data import emoji


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data root with a tiny emoji corpus and a tiny stdlib code corpus under corpora/."""
    root = tmp_path_factory.mktemp("data")
    emoji.fetch()  # a no-op once the sources are unpacked
    emoji.build(root / "corpora" / "emoji", limit=30)
    code_corpus.build(root / "corpora" / "code", limit=400, include_wheels=False, workers=1)
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"image": save_tiny_image_model(folder / "clip-tiny"), "code": save_tiny_code_model(folder / "code-tiny")}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_embed_text_and_code_jsonl(tmp_path, capsys, models):
    texts = ["sort a list in place", "parse a query string", "read a file", "open a socket"]
    source = _jsonl(tmp_path / "queries.jsonl", [{"text": t, "id": i} for i, t in enumerate(texts)])
    code, out, err = _run(capsys, "embed", "--model", models["code"], "--modality", "text", "--input", source,
                          "--output", tmp_path / "out" / "q.npy", "--batch-size", 3)
    assert code == 0, err
    assert "wrote 4 x 32 float32" in out
    vectors = np.load(tmp_path / "out" / "q.npy")
    assert vectors.dtype == np.float32 and vectors.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    expected = mmssl.load_model(models["code"], device="cpu").encode_text(texts)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)  # the input order
    assert not list((tmp_path / "out").glob(".*tmp"))  # atomic write left nothing behind

    functions = _jsonl(tmp_path / "code.jsonl", [{"code": "def add(a, b):\n    return a + b"},
                                                 {"code": "def neg(a):\n    return -a"}])
    code, _, err = _run(capsys, "embed", "--model", models["code"], "--modality", "code", "--input", functions,
                        "--output", tmp_path / "c.npy")
    assert code == 0, err
    assert np.load(tmp_path / "c.npy").shape == (2, 32)


def test_embed_image_folder_and_jsonl_in_the_same_order(tmp_path, capsys, models, data_dir):
    images = sorted((data_dir / "corpora" / "emoji" / "images").glob("*.png"))[:5]
    folder = tmp_path / "pictures"
    (folder / "nested").mkdir(parents=True)
    for i, image in enumerate(images):  # names chosen so sorted order differs from copy order
        shutil.copy(image, folder / ("nested" if i % 2 else ".") / f"{9 - i}.png")
    (folder / "notes.txt").write_text("not an image, ignored")
    code, _, err = _run(capsys, "embed", "--model", models["image"], "--modality", "image", "--input", folder,
                        "--output", tmp_path / "folder.npy")
    assert code == 0, err
    from_folder = np.load(tmp_path / "folder.npy")
    assert from_folder.shape == (5, 32) and from_folder.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(from_folder, axis=1), 1.0, atol=1e-5)

    ordered = sorted(p for p in folder.rglob("*.png"))  # sorted paths: 5, 7, 9 then nested/6, nested/8
    listing = _jsonl(folder / "list.jsonl", [{"image": str(p.relative_to(folder))} for p in ordered])
    code, _, err = _run(capsys, "embed", "--model", models["image"], "--modality", "image", "--input", listing,
                        "--output", tmp_path / "listed.npy")
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "listed.npy"), from_folder, atol=1e-5)
    reversed_listing = _jsonl(folder / "rev.jsonl", [{"image": str(p)} for p in ordered[::-1]])
    assert _run(capsys, "embed", "--model", models["image"], "--modality", "image", "--input", reversed_listing,
                "--output", tmp_path / "rev.npy")[0] == 0
    np.testing.assert_allclose(np.load(tmp_path / "rev.npy")[::-1], from_folder, atol=1e-5)


@pytest.mark.parametrize("case, message", [
    ("missing_field", r"lines.jsonl:2: no 'text' field \(fields: caption\)"),
    ("empty_file", "holds no records"),
    ("bad_json", "lines.jsonl:1: not valid JSON"),
    ("empty_text", "item 1 is an empty or whitespace-only text"),
    ("wrong_modality", "code model: it embeds --modality text or code, not image"),
    ("corrupt_image", "broken.png: not an image"),
    ("folder_as_text", "is a folder, which is read as images"),
])
def test_embed_errors_are_clear(tmp_path, capsys, models, case, message):
    source, model, modality = tmp_path / "lines.jsonl", models["code"], "text"
    if case == "missing_field":
        _jsonl(source, [{"text": "a cat"}, {"caption": "a dog"}])
    elif case == "empty_file":
        source.write_text("\n\n")
    elif case == "bad_json":
        source.write_text("{'text': 'single quotes'}\n")
    elif case == "empty_text":
        _jsonl(source, [{"text": "a cat"}, {"text": "   "}])
    elif case == "wrong_modality":
        _jsonl(source, [{"image": "x.png"}])
        modality = "image"
    elif case == "corrupt_image":
        source = tmp_path / "folder"
        source.mkdir()
        (source / "broken.png").write_text("hello")
        model, modality = models["image"], "image"
    elif case == "folder_as_text":
        source = tmp_path
    code, out, err = _run(capsys, "embed", "--model", model, "--modality", modality, "--input", source,
                          "--output", tmp_path / "x.npy")
    assert code == 1 and out == ""
    last_line = err.strip().splitlines()[-1]  # (progress bars of model loading may come first)
    assert last_line.startswith("mmssl embed: error:") and "Traceback" not in err
    assert re.search(message, last_line), err
    assert not (tmp_path / "x.npy").exists()


def test_eval_code_with_baselines(capsys, models, data_dir):
    code, out, err = _run(capsys, "eval", "--model", models["code"], "--task", "code", "--data-dir", data_dir,
                          "--json")
    assert code == 0, err
    results = json.loads(out)
    rows = {row["name"]: row for row in results["rows"]}
    assert list(rows) == ["model (code-tiny)", "BM25", "MiniLM zero-shot", "random"]
    num_pairs = results["num_pairs"]
    assert results["protocol"]["group_size"] == num_pairs > 20  # fewer pairs than 1000: one group of all
    assert rows["random"]["recall@1"] == pytest.approx(1 / num_pairs)
    assert rows["BM25"]["mrr"] > 0.5 > 3 * rows["random"]["mrr"]  # docstring words meet identifiers
    assert rows["MiniLM zero-shot"]["mrr"] > 0.5
    for row in rows.values():
        assert 0 <= row["recall@1"] <= row["recall@5"] <= row["recall@10"] <= 1 and row["seconds"] >= 0
    assert results["model"]["fingerprint"] == mmssl.load_model(models["code"], device="cpu").fingerprint

    code, table, err = _run(capsys, "eval", "--task", "code", "--split", "test", "--data-dir", data_dir)
    assert code == 0, err  # no model: the baselines alone, MiniLM's features now from the cache
    assert "baselines only" in table
    for name in ("BM25", "MiniLM zero-shot", "random", "MRR", "R@10", "seconds"):
        assert name in table


def test_eval_image(capsys, models, data_dir):
    code, table, err = _run(capsys, "eval", "--model", models["image"], "--task", "image", "--data-dir", data_dir)
    assert code == 0, err
    assert "emoji" in table and "model" in table and "random" in table and "T>I R@1" in table
    code, out, err = _run(capsys, "eval", "--model", models["image"], "--task", "image", "--data-dir", data_dir,
                          "--json")
    results = json.loads(out)
    model_row, random_row = results["rows"]
    assert model_row["corpus"] == "emoji" and model_row["num_images"] == results["corpora"]["emoji"]["num_images"]
    for direction in ("text_to_image", "image_to_text"):
        assert 0 <= model_row[direction]["recall@1"] <= model_row[direction]["recall@10"] <= 1
        assert random_row[direction]["recall@10"] > random_row[direction]["recall@1"] > 0


def test_eval_errors(capsys, models, data_dir, tmp_path):
    code, _, err = _run(capsys, "eval", "--model", models["image"], "--task", "code", "--data-dir", data_dir)
    assert code == 1 and "image-text model; evaluate it with --task image" in err
    code, _, err = _run(capsys, "eval", "--task", "image", "--data-dir", data_dir)
    assert code == 1 and "needs a model" in err
    code, _, err = _run(capsys, "eval", "--task", "code", "--data-dir", tmp_path)
    assert code == 1 and "python -m mmssl data build code" in err


def test_eval_image_unseen_split_pools_held_out_concepts(capsys, models, data_dir, tmp_path):
    """``--split unseen``: a row per large corpus that has the split, and one pooled unseen-style row
    of the icons whose concept is held out too (concept_split valid/test), scored as its own gallery."""
    emoji_dir = data_dir / "corpora" / "emoji"
    records = [json.loads(line) for s in ("train", "valid", "test") for line in (emoji_dir / f"{s}.jsonl").open()]
    unseen_dir = tmp_path / "corpora" / "iconsets"
    unseen_dir.mkdir(parents=True)
    (unseen_dir / "images").symlink_to(emoji_dir / "images")
    rows = [{**r, "split": "unseen", "concept_split": r["split"]} for r in records]
    _jsonl(unseen_dir / "unseen.jsonl", rows)
    held_out = sum(r["concept_split"] != "train" for r in rows)
    assert 0 < held_out < len(rows)

    code, out, err = _run(capsys, "eval", "--model", models["image"], "--task", "image", "--data-dir", tmp_path,
                          "--split", "unseen", "--json")
    assert code == 0, err
    results = json.loads(out)
    assert [(row["corpus"], row["name"], row["num_images"]) for row in results["rows"]] == [
        ("iconsets", "model", len(rows)), ("iconsets", "random", len(rows)),
        ("unseen-style", "model", held_out), ("unseen-style", "random", held_out)]
    # a smaller gallery is an easier one for the random ranking
    by_corpus = {row["corpus"]: row for row in results["rows"] if row["name"] == "random"}
    assert by_corpus["unseen-style"]["text_to_image"]["recall@10"] > by_corpus["iconsets"]["text_to_image"]["recall@10"]
