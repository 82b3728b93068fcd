"""bench/gpu_check.py's --smoke mode (CPU, 3 tiny steps of the default CLIP config) runs and reports."""

import json

import pytest
from script_module import load_script

@pytest.fixture(scope="module")
def tiny_emoji_root(tmp_path_factory):
    from mmssl.data import emoji

    root = tmp_path_factory.mktemp("data")
    emoji.fetch()  # idempotent; the sources live in the project's data root
    emoji.build(root / "corpora" / "emoji", limit=40)
    return root


def test_smoke_mode_trains_and_writes_its_json(tiny_emoji_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MMSSL_DATA_DIR", str(tiny_emoji_root))
    gpu_check = load_script("bench/gpu_check.py", "gpu_check")
    results = gpu_check.main(["--smoke", "--output", str(tmp_path / "gpu_check.json")])
    assert [r["variant"] for r in results] == ["fp32"] and results[0]["steps"] == 3
    assert results[0]["samples_per_s"] > 0 and results[0]["final_loss"] > 0
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["meta"]["smoke"] is True and saved["results"] == results
