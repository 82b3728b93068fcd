"""Item sources know their count before the first item is made, so a build's progress bar has a total."""

import json
import shutil
from pathlib import Path

from mmssl.index import build_index, code_folder_items
from tests.index.stub_model import StubModel


def test_project_items_are_counted_before_the_build(tmp_path, capsys):
    project = tmp_path / "project"
    shutil.copytree(Path(json.__file__).parent, project / "json")  # the real json package
    items, source = code_folder_items(project)
    count = len(items)
    assert count == len(list(items)) and count >= 5
    assert source["type"] == "code-folder" and source["folder"] == str(project.resolve())
    names = {item.metadata["func_name"] for item in items}
    assert {"JSONEncoder.encode", "JSONDecoder.decode"} <= names

    build_index(tmp_path / "ix", StubModel("code", 8), items, progress=True)
    bar = capsys.readouterr().err
    assert f"/{count} " in bar or f"/{count}[" in bar, bar  # "12/12 [...": the bar had its total
