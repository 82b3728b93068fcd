"""``python -m mmssl index build`` / ``search`` end to end with tiny real models and data."""

import json

import pytest
from tiny_models import save_tiny_code_model, save_tiny_image_model

from mmssl.cli import main
from mmssl.data.folder import image_files


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"image": save_tiny_image_model(folder / "clip-tiny"), "code": save_tiny_code_model(folder / "code-tiny")}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_image_folder_index_then_search(tmp_path, capsys, models, emoji_folder, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    code, out, _ = _run(capsys, "index", "build", "photos", "--model", models["image"], "--images", emoji_folder)
    assert code == 0 and "Flat" in out
    count = len(image_files(emoji_folder))
    assert f"{count} image items" in out
    code, out, _ = _run(capsys, "search", "--index", "photos", "--query", "grinning face", "-k", "5", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 5
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert all(h["path"].startswith(str(emoji_folder)) for h in hits)
    (emoji_folder / sorted(p.name for p in emoji_folder.iterdir())[0]).unlink()  # a file disappears
    code, out, _ = _run(capsys, "index", "refresh", "photos")
    assert code == 0 and "1 removed" in out and f"{count - 1} unchanged" in out


def test_project_index_with_the_code_model(tmp_path, capsys, models, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    project = tmp_path / "proj"
    project.mkdir()
    (project / "strings.py").write_text(
        'def parse_query(text):\n    """Parse a query string into a dictionary of values."""\n'
        '    pairs = [p.split("=") for p in text.split("&")]\n    return dict(pairs)\n\n\n'
        'def reverse_words(text):\n    """Reverse the order of the words in a sentence."""\n'
        '    words = text.split()\n    return " ".join(reversed(words))\n')
    code, out, _ = _run(capsys, "index", "build", "proj", "--model", models["code"], "--project", project)
    assert code == 0 and "2 code items" in out
    code, out, _ = _run(capsys, "search", "--index", "proj", "--query", "parse a query string", "-k", "2")
    assert code == 0 and "parse_query" in out and "reverse_words" in out


def test_search_errors_are_clear(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    code, _, err = _run(capsys, "search", "--index", "missing", "--query", "cat")
    assert code == 1 and "index build" in err
    code, _, err = _run(capsys, "search", "--index", "missing", "--query", "   ")
    assert code == 1 and "query is empty" in err


def test_search_filters_code_by_path_kind_and_tests(tmp_path, capsys, models, monkeypatch):
    monkeypatch.setenv("MMSSL_INDEX_DIR", str(tmp_path / "indexes"))
    project = tmp_path / "proj"
    (project / "pkg").mkdir(parents=True)
    (project / "tests").mkdir()
    body = '    """Parse a query string into a dictionary of values."""\n    pairs = text.split("&")\n' \
           '    return dict(p.split("=") for p in pairs)\n'
    (project / "pkg" / "query.py").write_text(
        f"def parse_query(text):\n{body}\n\nclass Parser:\n    def parse(self, text):\n"
        + "".join("    " + line + "\n" for line in body.splitlines()))
    (project / "pkg" / "words.py").write_text(f"def parse_words(text):\n{body}")
    (project / "tests" / "helpers.py").write_text(f"def parse_fixture(text):\n{body}")
    code, out, _ = _run(capsys, "index", "build", "proj", "--model", models["code"], "--project", project)
    assert code == 0 and "3 code items" in out  # the extraction skips tests/ folders

    def names(*flags):
        code, out, _ = _run(capsys, "search", "--index", "proj", "--query", "parse a query string", "-k", "10",
                            "--json", *flags)
        assert code == 0
        return sorted(h["func_name"] for h in json.loads(out))

    assert names() == names("--exclude-tests") == ["Parser.parse", "parse_query", "parse_words"]
    assert names("--kind", "method") == ["Parser.parse"]
    assert names("--kind", "function", "--path", "pkg/*.py") == ["parse_query", "parse_words"]
    assert names("--path", "words.py") == ["parse_words"]
    assert names("--module", "pkg.query", "--kind", "function") == ["parse_query"]
    code, _, err = _run(capsys, "search", "--index", "proj", "--query", "x", "--module", "a b")
    assert code != 0 and "not a module name" in err
