"""Deterministic, leak-free train/valid/test assignment by group key.

Every sample carries a *group* (the base emoji for all its skin-tone variants, the package/module of
a function). The split is a pure function of the group's hash, so it is stable across machines,
runs and corpus growth, and a group never straddles two splits.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "valid", "test")
# Whole icon sets and emoji artworks held out by style: every image of them goes here, whatever its
# concept (the large image corpora only). Train and valid never hold an image of such a set.
UNSEEN_SPLIT = "unseen"
ALL_SPLITS = SPLITS + (UNSEEN_SPLIT,)


def split_of(group: str, valid_fraction: float = 0.1, test_fraction: float = 0.2, salt: str = "mmssl") -> str:
    """Map a group key to "train", "valid" or "test".

    Args:
        group: the key all samples that must stay together share.
        valid_fraction, test_fraction: expected share of groups in valid and test.
        salt: changes the assignment wholesale (keep the default for comparable results).
    """
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise ValueError(f"split fractions must be >= 0 and sum below 1, got {valid_fraction} and {test_fraction}")
    digest = hashlib.sha1(f"{salt}:{group}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    if u < test_fraction:
        return "test"
    if u < test_fraction + valid_fraction:
        return "valid"
    return "train"
