"""``mmssl train clip --data folder:PATH``: fine-tune a saved model on a user's 50-image captioned folder,
into a new folder, and measure it against its start on the folder's held-out part (the user's own
evaluation path: an index of the held-out images and ``evaluate_index_queries``)."""

import hashlib
import json

import pytest
from own_data import emoji_folder, stdlib_project
from tiny_models import save_tiny_image_model

from mmssl.cli import main
from mmssl.data.corpus import load_corpus
from mmssl.data.user import DataSpec, DataSpecError, user_corpus
from mmssl.eval.user_queries import UserQuery
from mmssl.index import build_index, image_corpus_items
from mmssl.index.user_eval import evaluate_index_queries
from mmssl.model import load_model


@pytest.fixture(scope="module")
def captioned_folder(tmp_path_factory):
    """50 real emoji PNGs with their CLDR names in captions.csv."""
    return emoji_folder(tmp_path_factory.mktemp("own-data"))[0]


def held_out_mrr(model_path, corpus, corpus_dir, index_folder):
    """MRR of caption -> image over the folder's held-out (test) images, through an index of them."""
    model = load_model(model_path, device="cpu")
    items, source = image_corpus_items(corpus, "test", corpus_dir)
    index = build_index(index_folder, model, items, source=source, progress=False)
    queries = [UserQuery(r["text"], [r["image"]], i + 1) for i, r in enumerate(load_corpus(corpus, "test", corpus_dir))]
    return evaluate_index_queries(index, model, queries, baselines=False)["rows"][0]["mrr"], len(queries)


def digest(folder):
    return hashlib.sha1((folder / "model.safetensors").read_bytes()).hexdigest()


def test_fine_tuning_on_a_captioned_folder_beats_its_start_on_the_held_out_part(captioned_folder, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(tmp_path / "data"))
    start = save_tiny_image_model(tmp_path / "clip-tiny")
    before = digest(start)
    output = tmp_path / "clip-mine"
    args = ["train", "clip", "--data", f"folder:{captioned_folder}", "--from", str(start), "--output", str(output),
            "--train.max-steps", "25", "--train.batch-size", "16", "--train.lr", "1e-3", "--train.device", "cpu",
            "--train.progress", "false"]
    assert main(args) == 0
    assert digest(start) == before  # the old model stays as it was
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["started_from"] == str(start.resolve()) and manifest["steps"] == 25
    assert manifest["run"]["start_from"] == str(start.resolve()) and manifest["data_hash"]  # the one recipe ran
    corpus = DataSpec.parse(f"folder:{captioned_folder}").corpus_name
    corpus_dir = tmp_path / "data" / "corpora" / corpus
    counts = {s: sum(1 for _ in open(corpus_dir / f"{s}.jsonl")) for s in ("train", "valid", "test")}
    assert sum(counts.values()) == 50 and counts["test"] >= 8 and manifest["train_pairs"] == counts["train"]
    start_mrr, n = held_out_mrr(start, corpus, corpus_dir, tmp_path / "idx-start")
    tuned_mrr, _ = held_out_mrr(output, corpus, corpus_dir, tmp_path / "idx-mine")
    assert n == counts["test"] and tuned_mrr > start_mrr + 0.15, (start_mrr, tuned_mrr)
    assert main(args) == 1  # a second run would overwrite the new model: refused


def test_a_project_becomes_documented_pairs_split_by_file(tmp_path):
    project = stdlib_project(tmp_path / "proj", ("textwrap", "shlex", "fnmatch", "posixpath", "base64", "calendar"))
    name, report = user_corpus(f"project:{project}", tmp_path / "data")
    splits = {}
    for split in ("train", "valid", "test"):
        for line in open(tmp_path / "data" / "corpora" / name / f"{split}.jsonl"):
            record = json.loads(line)
            assert record["docstring"].strip()  # documented functions only
            splits.setdefault(record["path"], set()).add(split)
    assert all(len(s) == 1 for s in splits.values())  # no file on both sides of the split
    assert report.pairs["train"] > 20 and len({s for v in splits.values() for s in v}) >= 2


@pytest.mark.parametrize("spec, message", [("photos", "write folder:PATH"), ("images:/tmp", "write folder:PATH"),
                                           ("folder:/no/such/folder", "is not a folder")])
def test_a_bad_data_spec_says_how_to_write_it(spec, message):
    with pytest.raises(DataSpecError, match=message):
        DataSpec.parse(spec)


def test_fine_tuning_a_code_model_on_a_project(tmp_path, monkeypatch):
    from tiny_models import save_tiny_code_model

    monkeypatch.setenv("MMSSL_DATA_DIR", str(tmp_path / "data"))
    project = stdlib_project(tmp_path / "proj", ("textwrap", "shlex", "posixpath", "base64", "calendar"))
    start = save_tiny_code_model(tmp_path / "code-tiny")
    assert main(["train", "code", "--data", f"project:{project}", "--from", str(start), "--train.max-steps", "8",
                 "--train.batch-size", "8", "--train.device", "cpu", "--train.progress", "false"]) == 0
    output = tmp_path / "code-tiny-proj"  # beside the start, named after the project
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["task"] == "code" and manifest["train_pairs"] > 20 and manifest["final_train_loss"] > 0
    tuned, original = load_model(output, device="cpu"), load_model(start, device="cpu")
    assert tuned.kind == "code" and tuned.fingerprint != original.fingerprint
    assert main(["train", "code", "--data", f"folder:{project}", "--from", str(start)]) == 1  # code takes project:
