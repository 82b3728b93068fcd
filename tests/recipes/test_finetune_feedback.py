"""``mmssl train clip|code --data feedback:INDEX``: fine-tune on an index's 👍 votes and measure the new
model on the voted queries it never trained on (the feedback corpus holds out whole queries), beside
the model it started from; and feedback mixed with a project's pairs in one run.

The votes are simulated: a user who searched each of 50 emoji by its CLDR name and voted 👍 on the
right image (plus a few 👎, which are kept out of training)."""

import json

import pytest
from own_data import emoji_folder, stdlib_project
from tiny_models import save_tiny_code_model, save_tiny_image_model

from mmssl.app.feedback import FeedbackLog, feedback_path
from mmssl.cli import main
from mmssl.data.corpus import load_corpus
from mmssl.data.user import DataSpec
from mmssl.index import build_index, code_folder_items, image_folder_items
from mmssl.index.feedback_pairs import held_out_queries
from mmssl.index.user_eval import evaluate_index_queries
from mmssl.model import load_model


@pytest.fixture(scope="module")
def voting_folder(tmp_path_factory):
    """50 real emoji PNGs (no captions.csv: the votes are the only text) and each one's CLDR name."""
    return emoji_folder(tmp_path_factory.mktemp("feedback-data"), captions=False)


def index_with(model_path, folder, index_folder):
    model = load_model(model_path, device="cpu")
    items, source = image_folder_items(folder)
    return build_index(index_folder, model, items, source=source, progress=False), model


def test_fine_tuning_on_up_votes_raises_the_held_out_queries(voting_folder, tmp_path, monkeypatch):
    folder, names = voting_folder
    monkeypatch.setenv("MMSSL_DATA_DIR", str(tmp_path / "data"))
    start = save_tiny_image_model(tmp_path / "clip-tiny")
    index, model = index_with(start, folder, tmp_path / "indexes" / "photos")
    log = FeedbackLog(feedback_path(index.folder))
    paths = sorted(names)
    for path in paths:
        log.record(names[path], path, "up", index="photos")
    for path, wrong in zip(paths[:5], paths[5:10]):  # 👎 on a wrong image of five queries
        log.record(names[path], wrong, "down", index="photos")
    output = tmp_path / "clip-voted"
    assert main(["train", "clip", "--data", f"feedback:{index.folder}", "--from", str(start), "--output", str(output),
                 "--train.max-steps", "25", "--train.batch-size", "16", "--train.lr", "1e-3", "--train.device", "cpu",
                 "--train.progress", "false"]) == 0
    manifest = json.loads((output / "manifest.json").read_text())
    corpus = manifest["corpora"][0]
    train = load_corpus(corpus, "train", tmp_path / "data" / "corpora" / corpus).to_list()
    assert manifest["train_pairs"] == len(train) and all(names[r["image"]] == r["text"] for r in train)  # 👍 only
    held_out = held_out_queries(corpus, tmp_path / "data")
    assert len(held_out) >= 8 and len(held_out) + len(train) == 50
    assert not {q.text for q in held_out} & {r["text"] for r in train}
    before = evaluate_index_queries(index, model, held_out, baselines=False)["rows"][0]
    new_index, new_model = index_with(output, folder, tmp_path / "indexes" / "photos-voted")
    after = evaluate_index_queries(new_index, new_model, held_out, baselines=False)["rows"][0]
    print(f"held-out feedback queries: {len(held_out)}, MRR {before['mrr']:.3f} -> {after['mrr']:.3f}")
    assert after["mrr"] > before["mrr"] + 0.1, (before["mrr"], after["mrr"])
    improved = sum(a < b for a, b in zip(after["ranks"], before["ranks"]))
    assert improved > len(held_out) / 2, (before["ranks"], after["ranks"])


def test_feedback_mixes_with_a_project_and_must_match_the_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(tmp_path / "data"))
    project = stdlib_project(tmp_path / "proj", ("textwrap", "shlex", "posixpath", "base64", "calendar"))
    start = save_tiny_code_model(tmp_path / "code-tiny")
    items, source = code_folder_items(project)
    index = build_index(tmp_path / "indexes" / "proj", load_model(start, device="cpu"), items, source=source,
                        progress=False)
    log = FeedbackLog(feedback_path(index.folder))
    votes = {"remove common leading whitespace": "textwrap.py:dedent", "split a command line": "shlex.py:split",
             "quote for the shell": "shlex.py:quote", "join two paths": "posixpath.py:join",
             "encode bytes as base64": "base64.py:b64encode", "is it a leap year": "calendar.py:isleap",
             "wrap text to a width": "textwrap.py:wrap", "normalise a path": "posixpath.py:normpath"}
    for query, item in votes.items():
        log.record(query, item, "up")
    output = tmp_path / "code-mixed"
    assert main(["train", "code", "--data", f"project:{project}", "--data", f"feedback:{index.folder}", "--from",
                 str(start), "--output", str(output), "--train.max-steps", "4", "--train.batch-size", "8",
                 "--train.device", "cpu", "--train.progress", "false"]) == 0
    manifest = json.loads((output / "manifest.json").read_text())
    project_corpus = DataSpec.parse(f"project:{project}").corpus_name
    assert manifest["corpora"][0] == project_corpus and manifest["corpora"][1].startswith("user-feedback-")
    counts = [sum(1 for _ in open(tmp_path / "data" / "corpora" / name / "train.jsonl")) for name in manifest["corpora"]]
    assert manifest["train_pairs"] == sum(counts) and min(counts) > 0
    assert main(["train", "clip", "--data", f"feedback:{index.folder}", "--from", str(start),
                 "--output", str(tmp_path / "wrong")]) == 1  # votes on a code index train a code model
    assert not (tmp_path / "wrong").exists()
