"""The user's own training data as a corpus the dual-encoder recipe reads: ``folder:PATH`` (an image
folder with ``captions.csv``), ``project:PATH`` (a Python project's documented functions) or
``feedback:NAME`` (the 👍 pairs of an index's feedback file; the index layer reads those,
:mod:`mmssl.index.feedback_pairs`, and writes them with :func:`write_user_corpus`).

    name, report = user_corpus("folder:~/photos")      # -> <data root>/corpora/user-folder-<hash>/
    run = DualEncoderRun(corpora=[name], ...)         # train/valid/test.jsonl like any built corpus

The corpus is written beside the built ones (``<data root>/corpora/user-<kind>-<hash of the path>``),
split leak-free: images by file (:func:`mmssl.data.folder.build_folder_corpus`), functions by file, so
no file has pairs on both sides of the split. Rewritten on every call (the folder may have changed);
every split file is written atomically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mmssl.data.paths import data_root
from mmssl.data.report import CorpusReport

DATA_KINDS = ("folder", "project", "feedback")
FOLDER_KINDS = ("folder", "project")  # the kinds whose value is a folder on this machine
USER_CORPUS_PREFIX = "user-"


class DataSpecError(ValueError):
    """A ``--data`` value that is not ``folder:PATH`` or ``project:PATH`` of an existing folder, or
    ``feedback:NAME``; or data that gives no training pair."""


@dataclass(frozen=True)
class DataSpec:
    kind: str  # "folder" (images + captions.csv), "project" (Python code) or "feedback" (an index's votes)
    path: Path  # feedback: the index name or folder as written (the index layer resolves it)

    @classmethod
    def parse(cls, text: str) -> DataSpec:
        """``"folder:~/photos"`` -> ``DataSpec("folder", /home/me/photos)``.

        Raises:
            DataSpecError: an unknown kind, or a path that is not a folder.
        """
        kind, colon, path = str(text).partition(":")
        if not colon or kind not in DATA_KINDS or not path:
            raise DataSpecError(f"--data {text!r}: write folder:PATH (images, optional captions.csv with file,caption), "
                                "project:PATH (a Python project) or feedback:INDEX (the 👍 votes on an index)")
        if kind == "feedback":
            return cls(kind, Path(path))
        folder = Path(path).expanduser().resolve()
        if not folder.is_dir():
            raise DataSpecError(f"--data {text!r}: {folder} is not a folder")
        return cls(kind, folder)

    @property
    def corpus_name(self) -> str:
        digest = hashlib.sha1(str(self.path).encode("utf-8")).hexdigest()[:10]
        return f"{USER_CORPUS_PREFIX}{self.kind}-{digest}"


def _project_records(folder: Path) -> tuple[list[dict], CorpusReport]:
    """A project's documented functions (CodeSearchNet's rule), each in the split of its file."""
    from mmssl.data.code import extract_folder
    from mmssl.data.splits import split_of

    report = CorpusReport("project")
    records = []
    for record in extract_folder(folder, report, require_docstring=True):
        record["split"] = split_of(f"{record.get('repo', '')}/{record['path']}")
        records.append(record)
    report.extra["folder"] = str(folder)
    report.extra["split_by"] = "file"
    return records, report


def user_corpus_dir(spec: DataSpec, root: str | Path | None = None) -> Path:
    """``<root or data root>/corpora/<spec.corpus_name>``."""
    return (Path(root) if root is not None else data_root()) / "corpora" / spec.corpus_name


WANTED = {"folder": "captioned images", "project": "functions with docstrings",
          "feedback": "👍 votes on its results (a held-out share of the queries is never trained on)"}


def _checked(spec: DataSpec, report: CorpusReport) -> tuple[str, CorpusReport]:
    if not report.pairs.get("train"):
        raise DataSpecError(f"{spec.path} gave no training pairs ({report.pairs}); it needs {WANTED[spec.kind]}")
    return spec.corpus_name, report


def write_user_corpus(spec: DataSpec, records: list[dict], report: CorpusReport,
                      root: str | Path | None = None) -> tuple[str, CorpusReport]:
    """Write ``records`` (each with its ``split``) as the corpus of ``spec``; ``(corpus name, report)``.

    Raises:
        DataSpecError: no record is in the train split.
    """
    from mmssl.data.corpus import write_splits

    out_dir = user_corpus_dir(spec, root)
    report.pairs = write_splits(records, out_dir)
    report.save(out_dir / "report.json")
    return _checked(spec, report)


def user_corpus(spec: str | DataSpec, root: str | Path | None = None) -> tuple[str, CorpusReport]:
    """Write the user's folder or project as a corpus under ``<root or data root>/corpora``;
    ``(corpus name, report)``. (``feedback:`` specs: :func:`mmssl.index.feedback_pairs.training_corpus`.)

    Raises:
        DataSpecError: a bad spec, or data with no training pair.
    """
    from mmssl.data.folder import build_folder_corpus

    spec = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    if spec.kind not in FOLDER_KINDS:
        raise DataSpecError(f"{spec.kind}:{spec.path} is read through an index: use "
                            "mmssl.index.feedback_pairs.training_corpus")
    if spec.kind == "folder":
        return _checked(spec, build_folder_corpus(spec.path, user_corpus_dir(spec, root)))
    return write_user_corpus(spec, *_project_records(spec.path), root)
