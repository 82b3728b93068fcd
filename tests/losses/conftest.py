"""Shared checks for the loss tests: compare a loss with its naive loop reference (values and grads)."""

from __future__ import annotations

from typing import Callable

import pytest
import torch


def assert_matches_reference(
    loss_fn: Callable[..., torch.Tensor],
    reference_fn: Callable[..., torch.Tensor],
    *inputs: torch.Tensor,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> torch.Tensor:
    """Assert ``loss_fn(*inputs)`` equals ``reference_fn(*inputs)`` in value and in the gradient of
    every floating input; returns the loss."""
    grads = []
    for fn in (loss_fn, reference_fn):
        leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
        loss = fn(*leaves)
        differentiable = [x for x in leaves if x.requires_grad]
        grads.append((loss.detach(), torch.autograd.grad(loss, differentiable, allow_unused=True)))
    (loss, ours), (expected, theirs) = grads
    torch.testing.assert_close(loss, expected, rtol=rtol, atol=atol)
    for got, want in zip(ours, theirs):
        got = torch.zeros(()) if got is None else got
        want = torch.zeros(()) if want is None else want
        torch.testing.assert_close(got, want.expand_as(got) if want.ndim == 0 else want, rtol=rtol, atol=atol)
    assert loss.abs() > 0 or expected.abs() == 0
    return loss


@pytest.fixture
def matches_reference() -> Callable[..., torch.Tensor]:
    """The :func:`assert_matches_reference` check, as a fixture."""
    return assert_matches_reference


@pytest.fixture
def labelled_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """(10, 5) float64 embeddings and labels of 3 classes (sizes 4, 3, 3), shuffled."""
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(10, 5, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    return embeddings, labels


@pytest.fixture
def paired_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Two (7, 5) float64 views, row i of each a positive pair, partners correlated."""
    generator = torch.Generator().manual_seed(2)
    first = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    second = first + 0.5 * torch.randn(7, 5, generator=generator, dtype=torch.float64)
    return first, second
