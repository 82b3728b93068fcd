"""Users' own pretrained models from local files (no hub): an open_clip weights file as an image-text
model, a local sentence-transformers / HF folder as a code model; each loads, indexes real data and
searches, through the same commands as mmssl's own models."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import mmssl
from mmssl.cli import main
from mmssl.data.folder import image_files
from mmssl.encoders import build_tower, minilm_path
from mmssl.encoders.image import WeightsFileError, create_open_clip_model
from mmssl.model import read_model_card


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def vit_b_32_file(tmp_path_factory):
    """A randomly initialised open_clip ViT-B-32, saved locally as safetensors (nothing downloaded)."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    clip = create_open_clip_model("ViT-B-32")
    file = tmp_path_factory.mktemp("weights") / "vit-b-32.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(file))
    return file


def test_open_clip_weights_file_loads_indexes_and_searches(tmp_path, capsys, monkeypatch, emoji_folder, vit_b_32_file):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    spec = f"open_clip:ViT-B-32:{vit_b_32_file}"
    code, out, err = _run(capsys, "index", "build", "mine", "--model", spec, "--images", emoji_folder)
    assert code == 0, err
    count = len(image_files(emoji_folder))
    assert f"{count} image items" in out
    code, out, err = _run(capsys, "search", "--index", "mine", "--query", "grinning face", "-k", "5", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 5 and all(h["path"].startswith(str(emoji_folder)) for h in hits)
    # the index recorded the spec: searching by an indexed image finds that very image first
    model = mmssl.load_model(spec, device="cpu")
    assert model.kind == "image-text" and model.embed_dim == 512
    files = sorted(image_files(emoji_folder))
    from mmssl.index import load_index

    index = load_index(tmp_path / "indexes" / "mine")
    assert index.manifest.model_path == spec and index.manifest.model_fingerprint == model.fingerprint
    top = index.search(model.encode_image(files[:3]), k=1)
    assert [Path(h[0].metadata["path"]).name for h in top] == [f.name for f in files[:3]]
    card = read_model_card(spec)
    assert card.facts["architecture"] == "ViT-B-32" and card.facts["weights"] == str(vit_b_32_file)
    assert card.facts["weights_mb"] > 500 and card.metrics is None
    # served: the page's search service loads the spec as its image model; the About tab shows provenance
    from mmssl.app.config import AppConfig
    from mmssl.app.search import SearchService
    from mmssl.app.ui import _about

    service = SearchService.load(AppConfig(indexes=[str(tmp_path / "indexes" / "mine")], image_model=spec,
                                           code_model=str(tmp_path / "no-code-model")))
    result = service.search_images("grinning face", k=4)
    assert [h.metadata["path"] for h in result.hits] == [h["path"] for h in hits[:4]]
    about = _about(service)
    assert "architecture: ViT-B-32" in about and str(vit_b_32_file) in about


def test_pt_weights_load_with_weights_only_and_match_safetensors(tmp_path):
    from safetensors.torch import save_file

    clip = create_open_clip_model("vit-tiny-64")
    torch.save(clip.state_dict(), tmp_path / "tiny.pt")
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(tmp_path / "tiny.safetensors"))
    from_pt = mmssl.load_model(f"open_clip:vit-tiny-64:{tmp_path / 'tiny.pt'}", device="cpu")
    from_st = mmssl.load_model(f"open_clip:vit-tiny-64:{tmp_path / 'tiny.safetensors'}", device="cpu")
    texts = ["a red fire truck", "a sleepy face"]
    np.testing.assert_allclose(from_pt.encode_text(texts), from_st.encode_text(texts), atol=1e-6)
    # the text side is open_clip's own encode_text, normalised
    expected = clip.eval().encode_text(from_pt.dual_encoder.query_tower.prepare(texts)["input_ids"], normalize=True)
    np.testing.assert_allclose(from_pt.encode_text(texts), expected.detach().numpy(), atol=1e-5)


def test_open_clip_spec_errors_name_the_path_and_the_fix(tmp_path):
    clip = create_open_clip_model("vit-tiny-64")
    torch.save(clip.state_dict(), tmp_path / "tiny.pt")
    (tmp_path / "notes.txt").write_text("not weights")
    (tmp_path / "broken.pt").write_bytes(b"\x00garbage")
    cases = {
        f"open_clip:ViT-Q-99:{tmp_path / 'tiny.pt'}": "knows no architecture 'ViT-Q-99'",
        f"open_clip:vit-tiny-64:{tmp_path / 'missing.pt'}": f"no weights file at {tmp_path / 'missing.pt'}",
        f"open_clip:vit-tiny-64:{tmp_path / 'notes.txt'}": "notes.txt is not a weights file",
        f"open_clip:vit-tiny-64:{tmp_path / 'broken.pt'}": f"{tmp_path / 'broken.pt'} cannot be read",
        f"open_clip:resnet-tiny-64:{tmp_path / 'tiny.pt'}": "does not fit open_clip 'resnet-tiny-64'",
        "open_clip:vit-tiny-64": "is not an open_clip model spec",
    }
    for spec, message in cases.items():
        with pytest.raises(WeightsFileError) as caught:
            mmssl.load_model(spec, device="cpu")
        assert message in str(caught.value), (spec, str(caught.value))


def test_open_clip_weights_initialise_a_training_tower(tmp_path):
    clip = create_open_clip_model("vit-tiny-64")
    torch.save(clip.state_dict(), tmp_path / "tiny.pt")
    tower = build_tower("vit-tiny-64", pretrained=f"open_clip:vit-tiny-64:{tmp_path / 'tiny.pt'}")
    assert all(torch.equal(v, clip.visual.state_dict()[k]) for k, v in tower.visual.state_dict().items())


@pytest.fixture(scope="module")
def sentence_transformers_folder(tmp_path_factory):
    """The packaged MiniLM saved as a local sentence-transformers folder."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path_factory.mktemp("st") / "my-minilm"
    SentenceTransformer(str(minilm_path()), device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module")
def stdlib_project(tmp_path_factory):
    """A real Python project: the standard library's json package."""
    import json as json_package

    folder = tmp_path_factory.mktemp("proj") / "json"
    shutil.copytree(Path(json_package.__file__).parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_sentence_transformers_folder_loads_indexes_and_searches(tmp_path, capsys, monkeypatch,
                                                                 sentence_transformers_folder, stdlib_project):
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    model = mmssl.load_model(sentence_transformers_folder, device="cpu")
    assert model.kind == "code" and model.embed_dim == 384
    texts = ["parse a query string into a dict", "def f(x):\n    return x + 1"]
    peer = SentenceTransformer(str(sentence_transformers_folder), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(model.encode_text(texts), peer, atol=1e-5)  # the peer's own embedding
    np.testing.assert_allclose(model.encode_code(texts), peer, atol=1e-5)
    code, out, err = _run(capsys, "index", "build", "myjson", "--model", sentence_transformers_folder,
                          "--project", stdlib_project)
    assert code == 0, err
    queries = tmp_path / "queries.txt"
    queries.write_text("deserialize a JSON document from a file\nscan a JSON string literal and decode escapes\n")
    code, out, err = _run(capsys, "search", "--index", "myjson", "--queries", queries, "-k", "3", "--json")
    tops = [json.loads(line)["hits"][0] for line in out.splitlines()]
    assert code == 0 and [(h["path"], h["func_name"]) for h in tops] == [("__init__.py", "load"),
                                                                         ("decoder.py", "py_scanstring")], tops
    card = read_model_card(sentence_transformers_folder)
    assert card.facts["source"] == "local Hugging Face folder" and card.facts["sentence_transformers"] is True
    assert card.facts["architecture"] == "BertModel"


def test_hf_folder_is_a_tower_init_and_round_trips_in_a_dual_encoder(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from mmssl.encoders import DualEncoderConfig, TowerConfig, build_dual_encoder, load_dual_encoder, save_dual_encoder

    folder = tmp_path / "hf"
    AutoModel.from_pretrained(minilm_path()).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    mine = build_tower("hf-text", source=str(folder), pretrained="source")
    packaged = build_tower("minilm", pretrained="minilm")
    texts = ["reverse the words of a sentence", "read a csv file"]
    torch.testing.assert_close(mine.encode(texts), packaged.encode(texts), atol=1e-5, rtol=0)
    config = DualEncoderConfig(query=TowerConfig(name="minilm", pretrained="minilm", locked=True),
                               item=TowerConfig(name="hf-text", pretrained="source", source=str(folder)), embed_dim=384)
    saved = save_dual_encoder(build_dual_encoder(config), tmp_path / "model")
    loaded = mmssl.load_model(saved, device="cpu")
    assert loaded.kind == "code"
    np.testing.assert_allclose(loaded.encode_code(texts),
                               load_dual_encoder(saved).embed_items(texts).numpy(), atol=1e-5)


def test_hf_folder_errors_name_the_folder_and_the_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Hugging Face model folder"):
        build_tower("hf-text", source=str(tmp_path / "nowhere"), pretrained="source")
    with pytest.raises(FileNotFoundError, match="holds no transformers config.json"):
        build_tower("hf-text", source=str(tmp_path / "empty"), pretrained="source")
    (tmp_path / "notok").mkdir()
    (tmp_path / "notok" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(FileNotFoundError, match="has no tokenizer files"):
        mmssl.load_model(tmp_path / "notok", device="cpu")
