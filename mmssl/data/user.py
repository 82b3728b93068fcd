"""The user's own training data as a corpus the dual-encoder recipe reads: ``folder:PATH`` (an image
folder with ``captions.csv``) or ``project:PATH`` (a Python project's documented functions).

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

DATA_KINDS = ("folder", "project")
USER_CORPUS_PREFIX = "user-"


class DataSpecError(ValueError):
    """A ``--data`` value that is not ``folder:PATH`` or ``project:PATH`` of an existing folder."""


@dataclass(frozen=True)
class DataSpec:
    kind: str  # "folder" (images + captions.csv) or "project" (Python code)
    path: Path

    @classmethod
    def parse(cls, text: str) -> DataSpec:
        """``"folder:~/photos"`` -> ``DataSpec("folder", /home/me/photos)``.

        Raises:
            DataSpecError: an unknown kind, or a path that is not a folder.
        """
        kind, colon, path = str(text).partition(":")
        if not colon or kind not in DATA_KINDS or not path:
            raise DataSpecError(f"--data {text!r}: write folder:PATH (images, optional captions.csv with file,caption) "
                                "or project:PATH (a Python project)")
        folder = Path(path).expanduser().resolve()
        if not folder.is_dir():
            raise DataSpecError(f"--data {text!r}: {folder} is not a folder")
        return cls(kind, folder)

    @property
    def corpus_name(self) -> str:
        digest = hashlib.sha1(str(self.path).encode("utf-8")).hexdigest()[:10]
        return f"{USER_CORPUS_PREFIX}{self.kind}-{digest}"


def _project_corpus(folder: Path, out_dir: Path) -> CorpusReport:
    """A project's documented functions (CodeSearchNet's rule) as train/valid/test split by file."""
    from mmssl.data.code import extract_folder
    from mmssl.data.corpus import write_splits
    from mmssl.data.splits import split_of

    report = CorpusReport("project")
    records = []
    for record in extract_folder(folder, report, require_docstring=True):
        record["split"] = split_of(f"{record.get('repo', '')}/{record['path']}")
        records.append(record)
    report.pairs = write_splits(records, out_dir)
    report.extra["folder"] = str(folder)
    report.extra["split_by"] = "file"
    report.save(out_dir / "report.json")
    return report


def user_corpus(spec: str | DataSpec, root: str | Path | None = None) -> tuple[str, CorpusReport]:
    """Write the user's data as a corpus under ``<root or data root>/corpora``; ``(corpus name, report)``.

    Raises:
        DataSpecError: a bad spec, or data with no training pair.
    """
    from mmssl.data.folder import build_folder_corpus

    spec = spec if isinstance(spec, DataSpec) else DataSpec.parse(spec)
    out_dir = (Path(root) if root is not None else data_root()) / "corpora" / spec.corpus_name
    if spec.kind == "folder":
        report = build_folder_corpus(spec.path, out_dir)
    else:
        report = _project_corpus(spec.path, out_dir)
    if not report.pairs.get("train"):
        what = "captioned images" if spec.kind == "folder" else "functions with docstrings"
        raise DataSpecError(f"{spec.path} gave no training pairs ({report.pairs}); it needs {what}")
    return spec.corpus_name, report
