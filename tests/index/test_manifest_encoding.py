"""The index manifest records the encoding that embedded the items; a model running another is refused."""

import json

import numpy as np
import pytest

from mmssl.index import build_index, load_index
from mmssl.index.build import work_folder
from mmssl.index.errors import IndexModelMismatchError
from mmssl.index.manifest import MANIFEST_FILE, read_manifest

from tests.index.stub_model import StubModel, code_items

DIM = 8


def _stub(encoding: str | None, **kwargs) -> StubModel:
    model = StubModel("code", DIM, **kwargs)
    if encoding is not None:
        model.encoding = encoding
    return model


def test_manifest_encoding_round_trips_and_a_mismatch_is_refused(tmp_path):
    folder = tmp_path / "fast-ix"
    build_index(folder, _stub("fast"), code_items(12), progress=False)
    assert read_manifest(folder).encoding == "fast"
    assert json.loads((folder / MANIFEST_FILE).read_text())["encoding"] == "fast"
    assert load_index(folder, _stub("fast")).manifest.count == 12
    with pytest.raises(IndexModelMismatchError, match=r"embedded with encoding 'fast'.*runs 'fp32'.*"
                                                      r"with_encoding\('fast'\)"):
        load_index(folder, _stub("fp32"))
    with pytest.raises(IndexModelMismatchError, match="runs 'fp32'"):
        load_index(folder, _stub(None))  # a model with no encoding runs fp32


def test_an_index_from_before_the_field_reads_as_fp32(tmp_path):
    folder = tmp_path / "old-ix"
    build_index(folder, _stub(None), code_items(6), progress=False)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest.pop("encoding") == "fp32"
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert read_manifest(folder).encoding == "fp32"
    index = load_index(folder, _stub("fp32"))
    hits = index.search(np.ones(DIM, np.float32), k=3)[0]
    assert len(hits) == 3


def test_chunks_embedded_with_another_encoding_are_not_reused(tmp_path):
    folder = tmp_path / "ix"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after 2 complete chunks of 2 batches
        build_index(folder, _stub("fp32", fail_after_batches=4), code_items(30), chunk_size=10, batch_size=5,
                    progress=False)
    assert len(list(work_folder(folder).glob("chunk-*.json"))) == 2
    fast = _stub("fast")
    index = build_index(folder, fast, code_items(30), chunk_size=10, batch_size=5, progress=False)
    assert len(fast.encoded) == 30 and index.manifest.encoding == "fast"
