"""The code subword tokenizer: a WordPiece vocabulary trained on our own code and docstrings.

One tokenizer serves both sides of code search (natural-language queries and function bodies), so
it is built to put identifiers and words into the same units: ``parseQueryString``,
``parse_query_string`` and "parse a query string" all become ``parse``, ``query``, ``string`` (plus
``_`` tokens for the snake case). The pipeline, all inside HF ``tokenizers`` (Rust, serialisable to
one JSON file):

* normalise: NFKC, split camelCase humps with a zero-width regex replace, lowercase;
* pre-tokenise: whitespace, every punctuation mark on its own, every digit on its own;
* WordPiece (BERT's subword model) over what is left, so rare identifiers fall back to pieces
  (``##ify``) rather than ``[UNK]``.

Token ids 0, 1, 2 are ``[PAD]``, ``[UNK]``, ``[CLS]``; :func:`encode_batch` starts every sequence
with ``[CLS]``, so no sequence is ever empty (packed RNNs and masked means need one token).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from mmssl.io import atomic_path

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIAL_TOKENS = (PAD, UNK, CLS)
PAD_ID, UNK_ID, CLS_ID = 0, 1, 2
# A token is at least one character once whitespace is dropped; 32 characters per token of budget
# keeps every realistic prefix while bounding the work on a pathological 10 MB string.
CHARS_PER_TOKEN = 32


def _camel_case_boundaries() -> normalizers.Normalizer:
    # zero-width matches between "eQ" in parseQuery and "PR" in HTTPResponse, replaced by a space
    return normalizers.Replace(Regex(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])"), " ")


def new_code_tokenizer() -> Tokenizer:
    """An untrained tokenizer with the code pipeline (normaliser, pre-tokeniser, decoder)."""
    tokenizer = Tokenizer(models.WordPiece(unk_token=UNK, max_input_chars_per_word=64))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), _camel_case_boundaries(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(),
        pre_tokenizers.Punctuation("isolated"),
        pre_tokenizers.Digits(individual_digits=True),
    ])
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def train_code_tokenizer(texts: Iterable[str], vocab_size: int = 12_000, min_frequency: int = 2) -> Tokenizer:
    """Train a WordPiece vocabulary of at most ``vocab_size`` tokens on ``texts`` (code and docstrings).

    Args:
        texts: training strings, e.g. every function's code and docstring of the train split.
        vocab_size: vocabulary size, special tokens included (8k-16k suits ~5k-50k functions).
        min_frequency: a merge must occur this often to enter the vocabulary.
    """
    tokenizer = new_code_tokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    _check_special_ids(tokenizer, "the trained tokenizer")
    return tokenizer


def run_code_tokenizer(run_dir: str | Path, resume: bool, texts: Callable[[], Iterable[str]],
                       vocab_size: int) -> Tokenizer:
    """The code tokenizer of a training run, kept in ``run_dir/tokenizer.json``.

    A resumed run reads the saved one: its checkpoints' embedding rows index that vocabulary, and
    training again would not give it back (HF tokenizers' WordPiece trainer breaks ties in hash-map
    order, so the vocabulary differs from one process to the next: tokenizers #1794). Otherwise the
    tokenizer is trained on ``texts()`` and saved there before the first step.
    """
    path = Path(run_dir) / "tokenizer.json"
    if resume and path.is_file():
        return load_code_tokenizer(path)
    tokenizer = train_code_tokenizer(texts(), vocab_size=vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_code_tokenizer(tokenizer, path)
    return tokenizer


def save_code_tokenizer(tokenizer: Tokenizer, path: str | Path) -> Path:
    """Write the tokenizer as one JSON file, atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tokenizer.save(str(tmp))
    return Path(path)


def load_code_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer written by :func:`save_code_tokenizer`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"code tokenizer {path} not found; train one with "
                                "mmssl.encoders.train_code_tokenizer(texts) and save it with save_code_tokenizer")
    tokenizer = Tokenizer.from_file(str(path))
    _check_special_ids(tokenizer, str(path))
    return tokenizer


def _check_special_ids(tokenizer: Tokenizer, where: str) -> None:
    ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
    if ids != [PAD_ID, UNK_ID, CLS_ID]:
        raise ValueError(f"{where} is not an mmssl code tokenizer: {SPECIAL_TOKENS} have ids {ids}, "
                         f"expected {[PAD_ID, UNK_ID, CLS_ID]}")


def encode_batch(tokenizer: Tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """Tokenise ``texts`` to ``[CLS] + tokens``, truncated to ``max_length`` and padded to the longest.

    Returns:
        ``input_ids`` (B, L) int64 and ``attention_mask`` (B, L) int64 (1 = token, 0 = padding),
        ``L <= max_length``.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    clipped = [t[: max_length * CHARS_PER_TOKEN] for t in texts]
    encodings = tokenizer.encode_batch(clipped, add_special_tokens=False)
    return pad_token_rows([[CLS_ID] + e.ids[: max_length - 1] for e in encodings], PAD_ID)


def pad_token_rows(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Token id lists -> ``input_ids`` (B, L) padded with ``pad_id`` and ``attention_mask`` (B, L), int64;
    ``L`` is the longest row (1 for no rows)."""
    length = max((len(r) for r in rows), default=1)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)  # (B, L)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)  # (B, L)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
