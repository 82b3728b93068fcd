"""Which artwork licences the large image corpora accept, read from each set's ``info.license.spdx``.

Kept: permissive licences (MIT, Apache-2.0, ISC, BSD, CC0, Unlicense), attribution licences
(CC-BY-3.0/4.0), the SIL Open Font Licence (icon fonts: free use, embedding and derivatives; only
selling the font by itself is barred) and share-alike licences (CC-BY-SA-3.0/4.0: attribution,
and adapted material under the same licence; OpenMoji and EmojiOne 1 use it). Every kept set is
recorded with its licence and author in the corpus report, which is the attribution.

Dropped, by reason: software copyleft (GPL, MPL: written for code, their terms on a trained model
are unclear), non-commercial (CC-BY-NC*: not free for every user of mmssl), and any licence not
listed here or missing ("unknown licence").
"""

from __future__ import annotations

KEPT_LICENCES = frozenset({
    "MIT", "Apache-2.0", "ISC", "BSD-2-Clause", "BSD-3-Clause", "CC0-1.0", "Unlicense",
    "CC-BY-3.0", "CC-BY-4.0", "OFL-1.1", "CC-BY-SA-3.0", "CC-BY-SA-4.0",
})
_DROPPED_PREFIXES = (("GPL-", "copyleft licence"), ("LGPL-", "copyleft licence"), ("AGPL-", "copyleft licence"),
                     ("MPL-", "copyleft licence"), ("CC-BY-NC", "non-commercial licence"))


def licence_problem(info: dict) -> str | None:
    """None when the set's licence is kept, else the skip reason (``"copyleft licence (GPL-3.0)"``)."""
    spdx = spdx_of(info)
    if spdx in KEPT_LICENCES:
        return None
    for prefix, reason in _DROPPED_PREFIXES:
        if spdx.startswith(prefix):
            return f"{reason} ({spdx})"
    return f"unknown licence ({spdx or 'none given'})"


def spdx_of(info: dict) -> str:
    """The SPDX id of an Iconify ``info`` block, ``""`` when absent or malformed."""
    licence = info.get("license") if isinstance(info, dict) else None
    spdx = licence.get("spdx") if isinstance(licence, dict) else None
    return spdx.strip() if isinstance(spdx, str) else ""
