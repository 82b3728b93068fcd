"""``embed`` input errors name the file and the line (issue 14 item 8)."""

from __future__ import annotations

import pytest

from mmssl.cli import main
from mmssl.embed import EmbedInputError, read_items


def test_non_utf8_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "queries.jsonl"
    path.write_bytes(b'{"text": "fine"}\n\n{"text": "caf\xe9 latte"}\n')
    with pytest.raises(EmbedInputError) as caught:
        read_items("text", path)
    assert str(caught.value).startswith(f"{path}:3: not UTF-8 text (byte 0xe9 at column 14)")
    path.write_bytes('{"text": "café"}\n{"text": "naïve"}\n'.encode())
    assert read_items("text", path) == ["café", "naïve"]


def test_cli_prints_file_and_line_without_loading_a_model_first(tmp_path, capsys, monkeypatch):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "a"}\n\xff\xfe\n')

    class NoModel:
        kind, path = "image-text", "models/none"

    monkeypatch.setattr("mmssl.model.load_model", lambda *a, **k: NoModel())
    assert main(["embed", "--model", "models/none", "--modality", "text", "--input", str(path),
                 "--output", str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: not UTF-8 text (byte 0xff at column 1)" in err and "codec" not in err
