"""Input checks shared by all losses: one clear ``ValueError`` naming the argument and the fix."""

from __future__ import annotations

from collections.abc import Container

import torch


def check_choice(name: str, value: str, choices: Container[str]) -> None:
    """Raise if ``value`` is not one of ``choices`` (e.g. an unknown ``distance`` or ``reduction``)."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; use one of {sorted(choices)}.")


def check_embeddings(name: str, x: torch.Tensor, ndim: int = 2) -> None:
    """Raise unless ``x`` is a floating tensor with ``ndim`` dimensions and only finite values.

    Args:
        name: argument name used in the message.
        x: the tensor to check.
        ndim: expected number of dimensions (2 for (B, D) embeddings).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}; "
            + ("reshape it to (batch, dim)." if ndim == 2 else f"reshape it to {ndim} dimensions.")
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}; call .float().")
    if x.numel() and not _all_finite(x):
        raise ValueError(
            f"{name} contains NaN or inf values; check the encoder output (learning rate, "
            "AMP overflow) before the loss."
        )


def _all_finite(x: torch.Tensor) -> bool:
    """True when ``x`` has no NaN/inf; ``aminmax`` propagates NaN and is cheaper than
    ``isfinite(x).all()`` (no boolean copy of ``x``)."""
    low, high = torch.aminmax(x.detach())
    return bool(torch.isfinite(low) & torch.isfinite(high))


def check_labels(
    labels: torch.Tensor, embeddings: torch.Tensor, name: str = "labels", embeddings_name: str = "embeddings"
) -> None:
    """Raise unless ``labels`` is a 1-D tensor with one entry per row of ``embeddings``."""
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(labels).__name__}.")
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"{name} has shape {tuple(labels.shape)} but {embeddings_name} has {embeddings.shape[0]} rows; "
            f"pass a 1-D {name} tensor with one entry per row of {embeddings_name}."
        )


def check_same_shape(first_name: str, first: torch.Tensor, second_name: str, second: torch.Tensor) -> None:
    """Raise unless two paired tensors have identical shapes (row i of one pairs with row i of the other)."""
    if first.shape != second.shape:
        raise ValueError(
            f"{first_name} has shape {tuple(first.shape)} but {second_name} has shape "
            f"{tuple(second.shape)}; paired inputs need the same shape (row i of one is the "
            "positive of row i of the other)."
        )


def check_same_dim(first_name: str, first: torch.Tensor, second_name: str, second: torch.Tensor) -> None:
    """Raise unless two embedding tensors have the same last (feature) dimension."""
    if first.shape[-1] != second.shape[-1]:
        raise ValueError(
            f"{first_name} has feature dimension {first.shape[-1]} but {second_name} has "
            f"{second.shape[-1]}; project both to the same embedding dimension."
        )


def check_positive(name: str, value: float | torch.Tensor, allow_zero: bool = False) -> None:
    """Raise unless a scalar hyper-parameter (temperature, margin ...) is > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(value.shape)}.")
        value = float(value.detach())
    if not (value >= 0 if allow_zero else value > 0):
        raise ValueError(f"{name} must be {'>=' if allow_zero else '>'} 0, got {value}.")
