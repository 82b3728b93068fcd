"""Pickle-free checkpoints: safetensors for every tensor, JSON for everything else.

A checkpoint is a folder ``<run>/checkpoints/step_000200/`` with

* ``model.safetensors`` — the method's ``state_dict`` (what ``load_model`` and exports read);
* ``optimizer.safetensors`` + the ``optimizer`` entry of ``state.json`` — optimizer tensors and
  their structure (param groups, scalar state);
* ``rng.safetensors`` — torch CPU/CUDA generator states; Python and NumPy RNG states go in JSON;
* ``state.json`` — step, samples seen, scheduler state, resolved config, metrics so far.

It is written to a temp folder and swapped into place by :func:`mmssl.io.replace_folder` (the old
folder goes only after the new one is in place), then ``latest`` (a one-line file) is replaced
atomically; readers call :func:`mmssl.io.recover_folder` first, so a kill at any moment leaves a
loadable checkpoint.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mmssl.io import recover_folder, replace_folder, temp_folder, write_text
from mmssl.kinds import UNNAMED_CHECKPOINT


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete or of another kind; the message says what to do."""


def _optimizer_split(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entries in state["state"].items():
        meta["state"][str(pid)] = {}
        for k, v in entries.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
                meta["state"][str(pid)][k] = {"tensor": f"{pid}.{k}"}
            else:
                meta["state"][str(pid)][k] = {"value": v}
    return tensors, meta


def _optimizer_join(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state = {}
    for pid, entries in meta["state"].items():
        state[int(pid)] = {k: tensors[e["tensor"]] if "tensor" in e else e["value"] for k, e in entries.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    np_state = np.random.get_state()
    meta = {"python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    v, internal, gauss = meta["python"]
    random.setstate((v, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_checkpoint(folder: Path, model_state: dict, optimizer_state: dict | None, state: dict) -> Path:
    """Write a checkpoint folder atomically (temp folder, then a crash-safe swap)."""
    folder = Path(folder)
    tmp = temp_folder(folder)
    save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, str(tmp / "model.safetensors"),
              metadata={"format": "pt", "kind": str(state.get("kind", UNNAMED_CHECKPOINT))})
    state = dict(state)
    if optimizer_state is not None:
        tensors, meta = _optimizer_split(optimizer_state)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        state["optimizer"] = meta
    rng_tensors, rng_meta = rng_state()
    save_file(rng_tensors, str(tmp / "rng.safetensors"))
    state["rng"] = rng_meta
    (tmp / "state.json").write_text(json.dumps(state, default=str))
    return replace_folder(tmp, folder)


def load_checkpoint(folder: Path) -> tuple[dict, dict | None, dict]:
    """Read (model_state, optimizer_state, state) from a checkpoint folder; restores nothing."""
    folder = Path(folder)
    recover_folder(folder)
    if not (folder / "state.json").exists() or not (folder / "model.safetensors").exists():
        raise CheckpointError(f"{folder} is not a complete mmssl checkpoint (needs state.json and model.safetensors)")
    state = json.loads((folder / "state.json").read_text())
    model_state = load_file(str(folder / "model.safetensors"))
    optimizer_state = None
    if "optimizer" in state and (folder / "optimizer.safetensors").exists():
        optimizer_state = _optimizer_join(load_file(str(folder / "optimizer.safetensors")), state["optimizer"])
    return model_state, optimizer_state, state


def write_latest(checkpoints: Path, name: str) -> None:
    write_text(Path(checkpoints) / "latest", name + "\n")


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The folder ``latest`` points at, or None if the run has no complete checkpoint yet."""
    pointer = Path(checkpoints) / "latest"
    if not pointer.exists():
        return None
    folder = Path(checkpoints) / pointer.read_text().strip()
    recover_folder(folder)
    return folder if (folder / "state.json").exists() else None


def prune_checkpoints(checkpoints: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step folders (never the one ``latest`` names)."""
    latest = latest_checkpoint(checkpoints)
    steps = sorted(p for p in Path(checkpoints).glob("step_*") if p.is_dir())
    for p in steps[:-keep] if keep > 0 else []:
        if latest is None or p.resolve() != latest.resolve():
            shutil.rmtree(p, ignore_errors=True)
