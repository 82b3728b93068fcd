"""Frozen-feature evaluation of a pretrained encoder: linear-probe and weighted kNN accuracy.

* Linear probe: multinomial logistic regression on standardised features (train mean/std), L2
  weight decay on the weights (not the bias), full-batch L-BFGS with a strong-Wolfe line search.
  The objective is strictly convex and starts at zero, so the result is deterministic: no seed.
* kNN (Wu et al. 2018, InstDisc; Caron et al. 2021, DINO): cosine similarity to every training
  feature, the ``k = 20`` nearest vote for their label with weight ``exp(sim / T)``, ``T = 0.07``;
  the class with the largest total vote wins.

Labels may be any integers; a test label never seen in training counts as an error.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _encode_labels(train_labels: torch.Tensor, test_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Maps labels to 0 .. C-1 by the training classes; unseen test labels become -1."""
    classes = torch.unique(train_labels)  # (C,) sorted
    train_codes = torch.searchsorted(classes, train_labels)  # (N,)
    position = torch.searchsorted(classes, test_labels).clamp_max(len(classes) - 1)  # (M,)
    test_codes = torch.where(classes[position] == test_labels, position, torch.full_like(position, -1))  # (M,)
    return train_codes, test_codes, len(classes)


def _check(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor, test_labels: torch.Tensor
) -> None:
    if train_features.ndim != 2 or test_features.ndim != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"features must be (N, D) and (M, D), got {tuple(train_features.shape)} and {tuple(test_features.shape)}"
        )
    if train_labels.shape != (len(train_features),) or test_labels.shape != (len(test_features),):
        raise ValueError("labels must be one integer per feature row")
    if len(train_features) == 0 or len(test_features) == 0:
        raise ValueError("need at least one training and one test example")


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    weight_decay: float = 1e-4,
    max_steps: int = 300,
) -> dict[str, float]:
    """Train a logistic-regression probe on frozen features; report train and test accuracy.

    Args:
        train_features: (N, D) frozen features.
        train_labels: (N,) int labels.
        test_features: (M, D) frozen features.
        test_labels: (M,) int labels.
        weight_decay: L2 coefficient ``lambda`` in ``CE + lambda / 2 * ||W||^2``.
        max_steps: L-BFGS iterations.

    Returns:
        ``{"train_accuracy", "test_accuracy", "final_loss"}``; computed on the features' device.
    """
    train_features, test_features = train_features.float(), test_features.float()
    train_labels = train_labels.long().to(train_features.device)
    test_labels = test_labels.long().to(train_features.device)
    _check(train_features, train_labels, test_features, test_labels)
    train_codes, test_codes, num_classes = _encode_labels(train_labels, test_labels)

    mean = train_features.mean(dim=0)  # (D,)
    std = train_features.std(dim=0, unbiased=False).clamp_min(1e-6)  # (D,)
    train_x = (train_features - mean) / std  # (N, D)
    test_x = (test_features.to(train_features.device) - mean) / std  # (M, D)

    weight = torch.zeros(train_x.shape[1], num_classes, device=train_x.device, requires_grad=True)  # (D, C)
    bias = torch.zeros(num_classes, device=train_x.device, requires_grad=True)  # (C,)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_steps, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-6, tolerance_change=1e-9,
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(train_x @ weight + bias, train_codes) + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        final_loss = float(optimizer.step(objective).detach())
    with torch.no_grad():
        train_accuracy = float(((train_x @ weight + bias).argmax(dim=1) == train_codes).float().mean())
        test_accuracy = float(((test_x @ weight + bias).argmax(dim=1) == test_codes).float().mean())
    return {"train_accuracy": train_accuracy, "test_accuracy": test_accuracy, "final_loss": final_loss}


@torch.no_grad()
def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> float:
    """Weighted kNN accuracy on cosine similarity (InstDisc / DINO protocol).

    Args:
        train_features: (N, D) frozen features (the memory bank).
        train_labels: (N,) int labels.
        test_features: (M, D) frozen features.
        test_labels: (M,) int labels.
        k: neighbours (capped at N).
        temperature: vote weight ``exp(similarity / temperature)``.
        chunk_size: test rows per similarity block, bounding memory to (chunk, N).

    Returns:
        Test accuracy in [0, 1].
    """
    train_labels = train_labels.long().to(train_features.device)
    test_labels = test_labels.long().to(train_features.device)
    _check(train_features, train_labels, test_features, test_labels)
    train_codes, test_codes, num_classes = _encode_labels(train_labels, test_labels)
    bank = F.normalize(train_features.float(), dim=1)  # (N, D)
    queries = F.normalize(test_features.float().to(bank.device), dim=1)  # (M, D)
    k = min(k, len(bank))
    correct = 0
    for start in range(0, len(queries), chunk_size):
        similarity = queries[start : start + chunk_size] @ bank.T  # (B, N)
        top_similarity, top_index = similarity.topk(k, dim=1)  # (B, k)
        votes = torch.zeros(len(similarity), num_classes, device=bank.device)  # (B, C)
        votes.scatter_add_(1, train_codes[top_index], (top_similarity / temperature).exp())
        correct += int((votes.argmax(dim=1) == test_codes[start : start + chunk_size]).sum())
    return correct / len(queries)
