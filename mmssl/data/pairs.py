"""Training pairs for the dual encoders: (caption, image) and (docstring, code), as torch datasets.

A sample is a dict with one entry per side: ``"query"`` (a string, tokenised in the collate
function) or ``"query_features"`` (a (D,) row precomputed by a locked tower, see
:class:`mmssl.encoders.cache.FeatureCache`), and ``"item"`` (an image tensor made by the image
tower's train transform, or a code string). :class:`PairCollator` stacks tensors and tokenises
strings, so the trainer receives exactly what :meth:`DualEncoder.loss` takes.

Images are decoded once into one uint8 array (N, S, S, 3): 8,000 corpus images at 128 px are
~400 MB, far cheaper than decoding PNGs every epoch.
"""

from __future__ import annotations

import random
import re
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from mmssl.data.imageio import IMAGE_SIZE, open_image, to_square_rgb


def caption_choices(records: list[dict]) -> list[list[str]]:
    """Each record's captions, its name first (``text``), then the others without repeats."""
    out = []
    for r in records:
        seen, captions = set(), []
        for c in [r["text"], *r.get("captions", [])]:
            c = " ".join(str(c).split())
            if c and c.lower() not in seen:
                seen.add(c.lower())
                captions.append(c)
        out.append(captions)
    return out


def load_images(paths: list[str], size: int = IMAGE_SIZE) -> np.ndarray:
    """Decode images once into a (N, size, size, 3) uint8 array (corpus images already are size²)."""
    from tqdm.auto import tqdm

    array = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc="decoding images", unit="img", leave=False)):
        image = open_image(path)
        if image.size != (size, size) or image.mode != "RGB":
            image = to_square_rgb(image, size)
        array[i] = np.asarray(image)
    return array


class ImageTextPairs(Dataset):
    """(caption, image) pairs; the caption is the name with probability ``1 - keyword_prob``,
    else one of the other captions (keywords, aliases) — a text-side augmentation.

    Args:
        images: (N, S, S, 3) uint8, see :func:`load_images`.
        captions: per image, its captions (name first), see :func:`caption_choices`.
        transform: PIL image -> (3, s, s) tensor (the image tower's ``transform(train=True)``).
        caption_features: optional mapping caption -> row of ``feature_matrix`` (locked text tower).
    """

    def __init__(self, images: np.ndarray, captions: list[list[str]], transform: Callable,
                 keyword_prob: float = 0.3, caption_rows: dict[str, int] | None = None,
                 feature_matrix: torch.Tensor | None = None):
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} caption lists")
        self.images, self.captions, self.transform = images, captions, transform
        self.keyword_prob, self.caption_rows, self.feature_matrix = keyword_prob, caption_rows, feature_matrix

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        captions = self.captions[i]
        caption = captions[0]
        if len(captions) > 1 and random.random() < self.keyword_prob:
            caption = random.choice(captions[1:])
        sample = {"item": self.transform(Image.fromarray(self.images[i]))}  # (3, s, s)
        if self.feature_matrix is not None:
            sample["query_features"] = self.feature_matrix[self.caption_rows[caption]]  # (D,)
        else:
            sample["query"] = caption
        return sample


QUERY_VIEWS = ("docstring", "sentence", "name", "params")  # the query views of a function, see code_query_views
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`])")
_NAME_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_PARAM_DOC = re.compile(r"^\s*(?::param\s+(?:\w+\s+)?(\w+):|(\w+)\s*(?:\([^)]*\))?\s*:)\s*(\S.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Keyword Arguments)\s*:?\s*$")


def name_phrase(func_name: str) -> str:
    """``"parse_http_date"`` -> ``"parse http date"``; ``"HTTPServer.getURL"`` -> ``"get url http server"``
    (method words first, then the class's); leading underscores dropped."""
    *owners, name = func_name.split(".")
    words = [w.lower() for part in [name, *reversed(owners)] for w in _NAME_PART.findall(part)]
    return " ".join(words)


def param_docs(docstring: str) -> list[str]:
    """Parameter descriptions of a docstring (``:param x: ...`` or a Google/NumPy ``Args:`` section),
    each as ``"x: description"`` on one line."""
    docs, in_section, indent = [], False, None
    for line in docstring.splitlines():
        depth = len(line) - len(line.lstrip())
        if _SECTION.match(line):
            in_section, indent = True, None
            continue
        match = _PARAM_DOC.match(line)
        if match and (in_section or line.lstrip().startswith(":param")):
            docs.append(f"{match.group(1) or match.group(2)}: {match.group(3).strip()}")
            indent = depth
        elif docs and indent is not None and line.strip() and depth > indent:
            docs[-1] += " " + line.strip()  # a wrapped description continues the last parameter's
        else:
            indent = None
            if in_section and line.strip() and depth == 0:
                in_section = False  # an unindented line ends the section
    return docs


def full_docstring(record: dict) -> str:
    """The whole docstring of a record's function (corpus records keep only its first paragraph in
    ``docstring``; ``original_string`` has the source); ``docstring`` when the source does not parse."""
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(record.get("original_string") or record.get("code", "")))
    except SyntaxError:
        return record.get("docstring") or ""
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return (ast.get_docstring(functions[0]) if functions else None) or record.get("docstring") or ""


def code_query_views(record: dict) -> dict[str, str]:
    """The query views of one function record (``func_name``, ``docstring``, ``original_string``), by :data:`QUERY_VIEWS`
    name; a view the function lacks (no parameter docs) is left out.

    * ``docstring``: the docstring's first paragraph (the CSN query, what the release trains on);
    * ``sentence``: its first sentence;
    * ``name``: the name as words (:func:`name_phrase`) -- close to how developers ask;
    * ``params``: the parameter descriptions joined by ``"; "``.
    """
    from mmssl.data.code import first_paragraph

    views = {}
    first = first_paragraph(record.get("docstring") or "")
    if first:
        views["docstring"] = first
        views["sentence"] = _SENTENCE_END.split(first, maxsplit=1)[0]
    phrase = name_phrase(record["func_name"])
    if phrase:
        views["name"] = phrase
    params = param_docs(full_docstring(record))
    if params:
        views["params"] = "; ".join(params)
    return views


TRAIN_ITEM_TEXTS = ("code", "full", "nodoc")  # the item side's text when training, see training_item_text


def training_item_text(record: dict, variant: str) -> str:
    """The item text a function is trained with: an index text (:data:`mmssl.data.code_text.INDEX_TEXTS`)
    or ``"nodoc"`` -- the ``"full"`` form with the docstring cut (header line with module and qualified
    name, then signature and body). Training on ``"full"`` against docstring-derived queries is trivial
    (the query is inside the item); ``"nodoc"`` keeps everything else the product index embeds.

    Raises:
        ValueError: an unknown variant.
    """
    from mmssl.data.code_text import index_text

    if variant not in TRAIN_ITEM_TEXTS:
        raise ValueError(f"unknown training item text {variant!r}; choose one of {', '.join(TRAIN_ITEM_TEXTS)}")
    if variant == "nodoc":
        return index_text({**record, "original_string": record["code"]}, "full")
    return index_text(record, variant)


def code_training_pairs(records: list[dict], views: list[str], item_text: str = "code") -> tuple[list[str], list[str]]:
    """(queries, items): one pair per function and query view it has (``views`` from
    :data:`QUERY_VIEWS`), the item side as :func:`training_item_text` makes it (``"code"`` is CSN's
    docstring-cut form, ``"full"`` what the product index embeds, ``"nodoc"`` that without the docstring).

    Raises:
        ValueError: an unknown view or item text.
    """
    queries, items, _ = code_training_rows(records, views, item_text)
    return queries, items


def code_training_rows(records: list[dict], views: list[str],
                       item_text: str = "code") -> tuple[list[str], list[str], list[str]]:
    """:func:`code_training_pairs` and each pair's group, ``"<repo>/<path>#<view>"``: the functions of one
    module are each other's hard negatives (:class:`mmssl.train.sampler.GroupedSampler`), and one view per
    group keeps a function's other views -- the same item -- out of its chunk of the batch."""
    unknown = sorted(set(views) - set(QUERY_VIEWS))
    if unknown or not views:
        raise ValueError(f"unknown query view(s) {unknown or views}; choose from {', '.join(QUERY_VIEWS)}")
    queries, items, groups = [], [], []
    for record in records:
        item = training_item_text(record, item_text)
        record_views = code_query_views(record)
        for view in views:
            if view in record_views:
                queries.append(record_views[view])
                items.append(item)
                groups.append(f"{record.get('repo', '')}/{record.get('path', '')}#{view}")
    return queries, items, groups


class CodePairs(Dataset):
    """(docstring, code) pairs; ``query_features`` (N, D) replaces the docstring for a locked query tower,
    and ``item_states`` (a :class:`~mmssl.encoders.cache.StateCache` holding every code) replaces the
    code by its frozen-part token states (L, H) for a partially frozen item tower; ``groups`` names each
    pair's group (:func:`code_training_rows`) for grouped batches; ``negatives`` (one item text per pair,
    e.g. :func:`mmssl.eval.bm25.mine_bm25_negatives`) adds a hard negative item to each sample (``negative_item`` /
    ``negative_item_states``, see :meth:`mmssl.encoders.dual.DualEncoder.loss`)."""

    def __init__(self, docstrings: list[str], codes: list[str], query_features: torch.Tensor | None = None,
                 item_states=None, groups: list[str] | None = None, negatives: list[str] | None = None):
        if (len(docstrings) != len(codes) or (groups is not None and len(groups) != len(codes))
                or (negatives is not None and len(negatives) != len(codes))):
            raise ValueError(f"{len(docstrings)} docstrings, {len(codes)} functions, {len(groups or [])} groups "
                             f"and {len(negatives or [])} negatives: one each per pair")
        self.docstrings, self.codes, self.query_features = docstrings, codes, query_features
        self.item_states, self.groups = item_states, groups  # groups: for train.groups_per_batch
        self.negatives = negatives

    def __len__(self) -> int:
        return len(self.codes)

    def _item(self, text: str, key: str) -> dict:
        if self.item_states is not None:
            return {f"{key}_states": self.item_states.states(text)}  # (L, H) float16
        return {key: text}

    def __getitem__(self, i: int) -> dict:
        sample = self._item(self.codes[i], "item")
        if self.negatives is not None:
            sample.update(self._item(self.negatives[i], "negative_item"))
        if self.query_features is not None:
            sample["query_features"] = self.query_features[i]  # (D,)
        else:
            sample["query"] = self.docstrings[i]
        return sample


class PairCollator:
    """List of samples -> batch: tensors stacked, strings tokenised by the side's tower, and ragged
    ``{side}_states`` (L_i, H) padded to ``{side}_states`` (B, L, H) float32 with
    ``{side}_states_mask`` (B, L). ``negative_{side}`` strings use the side's tokenizer."""

    def __init__(self, query_tokenize: Callable | None = None, item_tokenize: Callable | None = None):
        self.tokenize = {"query": query_tokenize, "item": item_tokenize}

    def __call__(self, samples: list[dict]) -> dict:
        batch = {}
        for key in samples[0]:
            values = [s[key] for s in samples]
            if key.endswith("_states"):
                batch[key], batch[f"{key}_mask"] = pad_states(values)
            elif isinstance(values[0], str):
                tokenize = self.tokenize.get(key.removeprefix("negative_"))
                if tokenize is None:
                    raise ValueError(f"batch[{key!r}] holds strings but no tokenizer was given for that side")
                batch[key] = tokenize(values)
            else:
                batch[key] = torch.stack(values)  # (B, ...)
        return batch


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged (L_i, H) token states -> ((B, L, H) float32 zero-padded, (B, L) long attention mask)."""
    lengths = torch.tensor([len(s) for s in states])  # (B,)
    padded = torch.nn.utils.rnn.pad_sequence([s.float() for s in states], batch_first=True)  # (B, L, H)
    mask = (torch.arange(padded.shape[1]) < lengths[:, None]).long()  # (B, L)
    return padded, mask
