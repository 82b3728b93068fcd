"""Users' own pretrained models from local files, as dual encoders: no training, no download.

Two kinds of *model spec* stand wherever a model folder does (``load_model``, index build,
search, serve, eval):

* ``open_clip:ARCH:/path/weights.safetensors`` (or ``.pt``, read with ``weights_only``): an
  open_clip image-text model. Items are images through its ``visual`` tower, queries are text
  through its own text transformer and tokenizer; both already end in the shared space, so the
  projections are the identity.
* a local Hugging Face / sentence-transformers folder (``config.json`` with a ``model_type`` and
  a tokenizer): a text-code model whose query and item sides are the same encoder
  (:class:`mmssl.encoders.text.HFTextTower`), as sentence-transformers uses one model for both.

:func:`external_provenance` says where each came from (the About tab shows it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from mmssl.encoders.dual import DualEncoder
from mmssl.encoders.image import OpenClipImageTower, is_open_clip_spec, load_open_clip_model, parse_open_clip_spec
from mmssl.encoders.text import HFTextTower, hf_folder
from mmssl.encoders.tokenizer import CHARS_PER_TOKEN
from mmssl.encoders.tower import Tower, TowerConfig
from mmssl.kinds import TEXT

HASH_CHUNK = 1 << 20


class OpenClipFullTextTower(Tower):
    """A whole open_clip model's text side (``encode_text``: transformer, pooling, text projection)."""

    modality = "text"
    reads = TEXT

    def __init__(self, config: TowerConfig, clip, arch: str, output_dim: int):
        super().__init__(config)
        import open_clip

        self.clip = clip  # its visual tower is detached by the caller: this tower holds only the text side
        self.output_dim = output_dim
        try:
            self.clip_tokenizer = open_clip.get_tokenizer(arch)
        except OSError as e:  # an HF tokenizer that is not cached locally
            raise ValueError(f"open_clip {arch!r} needs a tokenizer that is not on this machine ({e}); use an "
                             "architecture with CLIP's bundled BPE tokenizer (e.g. ViT-B-32)") from e
        self.context_length = int(getattr(self.clip_tokenizer, "context_length", 77))

    def prepare(self, texts: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        clipped = [t[: self.context_length * CHARS_PER_TOKEN] for t in texts]
        return {"input_ids": self.clip_tokenizer(clipped)}  # (B, context_length)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.clip.encode_text(inputs["input_ids"], normalize=True)  # (B, L) -> (B, E)


def is_external_spec(spec: str | Path) -> bool:
    """Whether ``spec`` names a user's own model (open_clip spec, or an HF folder) rather than an mmssl folder."""
    if is_open_clip_spec(str(spec)):
        return True
    path = Path(spec).expanduser()
    return path.is_dir() and _is_transformers_config(path / "config.json")  # mmssl's config.json has no model_type


def _is_transformers_config(config_file: Path) -> bool:
    import json

    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model_type" in config


def _identity_dual_encoder(query: Tower, item: Tower) -> DualEncoder:
    """Both towers already end in one space: identity projections, CLIP's usual scale."""
    return DualEncoder(query, item, embed_dim=item.output_dim, projection_init="identity")


def open_clip_dual_encoder(spec: str) -> DualEncoder:
    """An open_clip weights file as a dual encoder: text queries, image items (eval mode, CPU)."""
    arch, _ = parse_open_clip_spec(spec)
    clip = load_open_clip_model(spec)
    item = OpenClipImageTower(TowerConfig(name=f"open_clip:{arch}", pretrained=spec), arch, clip=clip)
    clip.visual = torch.nn.Identity()  # the item tower owns it now
    query = OpenClipFullTextTower(TowerConfig(name=f"open_clip-text:{arch}", pretrained=spec), clip, arch,
                                  item.output_dim)
    for tower in (item, query):
        tower.lock()
    return _identity_dual_encoder(query, item).eval()


def hf_dual_encoder(folder: str | Path) -> DualEncoder:
    """A local HF / sentence-transformers folder as a dual encoder: one encoder for queries and code."""
    folder = hf_folder(folder)
    tower = HFTextTower(TowerConfig(name="hf-text", pretrained="source", source=str(folder), max_length=256,
                                    locked=True))
    tower.lock()
    return _identity_dual_encoder(tower, tower).eval()


def external_dual_encoder(spec: str | Path) -> DualEncoder:
    """The dual encoder of a user's model spec (see the module docstring)."""
    if is_open_clip_spec(str(spec)):
        return open_clip_dual_encoder(str(spec))
    return hf_dual_encoder(spec)


def external_weights_files(spec: str | Path) -> list[Path]:
    """The files a spec's weights live in (what its fingerprint hashes)."""
    if is_open_clip_spec(str(spec)):
        return [parse_open_clip_spec(str(spec))[1]]
    folder = hf_folder(spec)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".json", ".txt"))


def external_fingerprint(spec: str | Path) -> str:
    """``sha256:`` + 16 hex digits over the spec's weight (and config/tokenizer) files' names and bytes."""
    digest = hashlib.sha256(str(spec).split(":", 2)[1].encode() if is_open_clip_spec(str(spec)) else b"hf")
    for file in external_weights_files(spec):
        digest.update(file.name.encode())
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()[:16]}"


def external_provenance(spec: str | Path) -> dict:
    """Where a user's model came from: its kind, architecture, files and sizes (for model cards)."""
    files = external_weights_files(spec)
    facts = {"source": "open_clip weights file" if is_open_clip_spec(str(spec)) else "local Hugging Face folder"}
    if is_open_clip_spec(str(spec)):
        facts["architecture"] = str(spec).split(":", 2)[1]
        facts["weights"] = str(files[0])
    else:
        import json

        folder = hf_folder(spec)
        config = json.loads((folder / "config.json").read_text())
        facts["architecture"] = ", ".join(config.get("architectures") or [config["model_type"]])
        facts["folder"] = str(folder)
        facts["sentence_transformers"] = (folder / "modules.json").is_file()
    facts["weights_mb"] = round(sum(f.stat().st_size for f in files) / 1e6, 1)
    return facts
