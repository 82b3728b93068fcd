"""InfoNCE (van den Oord et al. 2018) and its relatives: symmetric CLIP form, NT-Xent, MoCo queue.

* :func:`info_nce_loss`: categorical cross-entropy of each query over its positive key and many
  negatives (the other positives of the batch, or given negatives such as a MoCo queue).
* :func:`symmetric_info_nce_loss`: CLIP (Radford et al. 2021): InfoNCE in both directions
  (first->second and second->first), averaged. Equals ``open_clip.loss.ClipLoss`` with
  ``logit_scale = 1 / temperature`` (tested). :class:`SymmetricInfoNCELoss` stores the *log*
  logit scale as CLIP does (init ``log(1/0.07)``), clamps the scale at 100 in ``forward`` (so no
  optimiser hook is needed) and can gather the global batch through
  :mod:`mmssl.distributed`, either full global logits or open_clip's "local loss".
* :func:`nt_xent_loss`: SimCLR's NT-Xent, the 2N-view case: 2N L2-normalised views, each view's
  positive is its partner and the other 2N-2 views are negatives. Equals
  ``pytorch_metric_learning.losses.NTXentLoss`` with labels ``cat([arange(N), arange(N)])``
  (tested; pml adds ``finfo.tiny`` inside its log, below float64 round-off here).
* :class:`NegativeQueue`: MoCo's FIFO queue of past keys used as extra negatives.

Memory: the logits are (B, B) (or (B, K) with K queue negatives). Measured peak of
forward+backward at B=1024, D=128, float32 (``bench/losses.py``): symmetric 20.5 MiB (ClipLoss
17 MiB: it keeps one log-softmax per direction where we keep two log-sum-exps and the logits),
NT-Xent 14.5 MiB for 2N=1024 (pml's NTXentLoss: 272 MiB already at 2N=256, ~24 GiB at 1024).

Dot products are used as given in :func:`info_nce_loss` and :func:`symmetric_info_nce_loss`
(L2-normalise first for cosine similarity, as CLIP's towers do); :func:`nt_xent_loss` normalises.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmssl.distributed import all_gather_no_grad, all_gather_with_grad, is_distributed, local_row_offset
from mmssl.losses.checks import check_embeddings, check_labels, check_positive, check_same_dim, check_same_shape
from mmssl.losses.pairs import lowest
from mmssl.losses.reduction import reduce_losses


def info_nce_loss(
    query: torch.Tensor,
    positive_key: torch.Tensor,
    negative_keys: torch.Tensor | None = None,
    temperature: float | torch.Tensor = 0.1,
    reduction: str = "mean",
) -> torch.Tensor:
    """One-directional InfoNCE.

    Args:
        query: (B, D) queries.
        positive_key: (B, D) keys; row i is the positive of ``query[i]``.
        negative_keys: ``None`` for in-batch negatives (the other B-1 positive keys); (K, D) shared
            negatives (e.g. a :class:`NegativeQueue`); or (B, K, D) per-query negatives.
        temperature: softmax temperature (float or scalar tensor, may be learnable).
        reduction: ``"mean"`` / ``"sum"`` over queries, or ``"none"`` ((B,)).

    Returns:
        Scalar loss, or (B,) for ``reduction="none"``.
    """
    check_embeddings("query", query)
    check_embeddings("positive_key", positive_key)
    check_same_shape("query", query, "positive_key", positive_key)
    check_positive("temperature", temperature)
    scaled_query = query / temperature  # (B, D): scaling here is cheaper than scaling the logits
    if negative_keys is None:
        logits = scaled_query @ positive_key.T  # (B, B), positives on the diagonal
        targets = torch.arange(query.shape[0], device=query.device)
    else:
        check_same_dim("query", query, "negative_keys", negative_keys)
        if negative_keys.ndim == 3:
            check_embeddings("negative_keys", negative_keys, ndim=3)
            if negative_keys.shape[0] != query.shape[0]:
                raise ValueError(
                    f"negative_keys has {negative_keys.shape[0]} rows but query has {query.shape[0]}; "
                    "pass (K, D) shared negatives or (B, K, D) negatives per query."
                )
            negative_logits = torch.einsum("bd,bkd->bk", scaled_query, negative_keys)  # (B, K)
        else:
            check_embeddings("negative_keys", negative_keys)
            negative_logits = scaled_query @ negative_keys.T  # (B, K)
        positive_logits = (scaled_query * positive_key).sum(dim=1, keepdim=True)  # (B, 1)
        logits = torch.cat([positive_logits, negative_logits], dim=1)  # (B, 1 + K), positive first
        targets = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    losses = F.cross_entropy(logits, targets, reduction="none")  # (B,)
    return reduce_losses(losses, None, reduction)


def symmetric_info_nce_loss(
    first: torch.Tensor,
    second: torch.Tensor,
    temperature: float | torch.Tensor = 0.07,
    *,
    first_keys: torch.Tensor | None = None,
    second_keys: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    second_negatives: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP): ``(CE(first -> second) + CE(second -> first)) / 2``.

    Args:
        first: (B, D) e.g. image embeddings; row i pairs with ``second[i]``.
        second: (B, D) e.g. text embeddings.
        temperature: ``1 / logit_scale``.
        first_keys: (M, D) keys the ``second`` queries score; default ``first``. A larger set
            (the gathered global batch) gives open_clip's "local loss".
        second_keys: (M, D) keys the ``first`` queries score; default ``second``.
        targets: (B,) row of each query's positive among the keys; default ``arange(B)``.
        second_negatives: (K, D) extra keys only the ``first`` queries score (hard negatives of the
            second kind, e.g. a BM25-mined wrong function per code-search query); the
            second -> first direction is unchanged. Only with the default keys and targets.
        reduction: ``"mean"`` / ``"sum"`` over the B pairs (each pair's two directions averaged),
            or ``"none"`` ((B,)).

    Returns:
        Scalar loss, or (B,) for ``reduction="none"``. A batch of 1 gives exactly 0.
    """
    check_embeddings("first", first)
    check_embeddings("second", second)
    check_same_shape("first", first, "second", second)
    check_positive("temperature", temperature)
    if first_keys is None and second_keys is None and targets is None:
        # One product serves both directions: row i of the logits scores first_i against every
        # second, column i scores second_i against every first, the positives sit on the diagonal.
        logits = (first / temperature) @ second.T  # (B, B)
        row_lse = torch.logsumexp(logits, dim=1)  # (B,) first -> second
        if second_negatives is not None:
            check_embeddings("second_negatives", second_negatives)
            check_same_dim("first", first, "second_negatives", second_negatives)
            extra_lse = torch.logsumexp((first / temperature) @ second_negatives.T, dim=1)  # (B,) over (B, K)
            row_lse = torch.logaddexp(row_lse, extra_lse)  # (B,) first -> second and the extra keys
        column_lse = torch.logsumexp(logits, dim=0)  # (B,) second -> first
        losses = (row_lse + column_lse) / 2 - logits.diagonal()  # (B,) mean of the two cross-entropies
        return reduce_losses(losses, None, reduction)
    if second_negatives is not None:
        raise ValueError("second_negatives works with the default keys and targets only; "
                         "append them to second_keys instead")
    first_keys = first if first_keys is None else first_keys
    second_keys = second if second_keys is None else second_keys
    check_embeddings("first_keys", first_keys)
    check_embeddings("second_keys", second_keys)
    check_same_shape("first_keys", first_keys, "second_keys", second_keys)
    check_same_dim("first", first, "first_keys", first_keys)
    logits = (first / temperature) @ second_keys.T  # (B, M)
    logits_transposed = (second / temperature) @ first_keys.T  # (B, M)
    if targets is None:
        targets = torch.arange(first.shape[0], device=first.device)
    else:
        check_labels(targets, first, name="targets", embeddings_name="first")
    losses = (
        F.cross_entropy(logits, targets, reduction="none")
        + F.cross_entropy(logits_transposed, targets, reduction="none")
    ) / 2  # (B,)
    return reduce_losses(losses, None, reduction)


def nt_xent_loss(
    first: torch.Tensor, second: torch.Tensor, temperature: float | torch.Tensor = 0.5, reduction: str = "mean"
) -> torch.Tensor:
    """NT-Xent (SimCLR, Chen et al. 2020): InfoNCE over 2N views with cosine similarity.

    Args:
        first: (N, D) first view of each sample.
        second: (N, D) second view; row i is the positive of ``first[i]``.
        temperature: softmax temperature.
        reduction: ``"mean"`` / ``"sum"`` over the 2N views, or ``"none"`` ((2N,): first views,
            then second views).

    Returns:
        Scalar loss. With N = 1 each view has only its positive: exactly 0.
    """
    check_embeddings("first", first)
    check_embeddings("second", second)
    check_same_shape("first", first, "second", second)
    check_positive("temperature", temperature)
    num = first.shape[0]
    views = F.normalize(torch.cat([first, second], dim=0), dim=1)  # (2N, D)
    logits = (views / temperature) @ views.T  # (2N, 2N); scaling (2N, D) is cheaper than (2N, 2N)
    self_pairs = torch.eye(2 * num, dtype=torch.bool, device=first.device)
    logits = logits.masked_fill(self_pairs, lowest(logits.dtype))  # a view is not its own negative
    partner = torch.arange(2 * num, device=first.device).roll(num)  # (2N,) i <-> i + N
    losses = F.cross_entropy(logits, partner, reduction="none")  # (2N,)
    return reduce_losses(losses, None, reduction)


class InfoNCELoss(nn.Module):
    """Module form of :func:`info_nce_loss`; ``forward(query, positive_key, negative_keys=None)``."""

    input_kind = "paired"

    def __init__(self, temperature: float = 0.1, reduction: str = "mean") -> None:
        super().__init__()
        self.temperature, self.reduction = temperature, reduction

    def forward(
        self, query: torch.Tensor, positive_key: torch.Tensor, negative_keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        return info_nce_loss(query, positive_key, negative_keys, self.temperature, self.reduction)


class SymmetricInfoNCELoss(nn.Module):
    """CLIP's symmetric InfoNCE with a learnable temperature and optional global-batch negatives.

    Args:
        init_temperature: initial temperature; the log logit scale starts at ``log(1/init_temperature)``.
        max_logit_scale: the scale is clamped here in ``forward`` (CLIP: 100).
        learnable: learn the log logit scale (a parameter) or keep it fixed (a buffer).
        gather: under torch.distributed, use every rank's pairs as negatives (no-op otherwise).
        local_loss: with ``gather``, each rank scores only its local queries against the global
            keys (open_clip's ``local_loss``: B x WB logits instead of WB x WB). The loss returned
            on a rank is its local share; its mean over ranks is the global loss.
        reduction: as in :func:`symmetric_info_nce_loss`.

    Gradients under ``gather`` follow :mod:`mmssl.distributed`: with DDP's gradient
    averaging, parameter gradients equal one process on the concatenated batch.
    """

    input_kind = "paired"

    def __init__(
        self,
        init_temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        learnable: bool = True,
        gather: bool = True,
        local_loss: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        check_positive("init_temperature", init_temperature)
        log_logit_scale = torch.tensor(math.log(1.0 / init_temperature))
        if learnable:
            self.log_logit_scale = nn.Parameter(log_logit_scale)
        else:
            self.register_buffer("log_logit_scale", log_logit_scale)
        self.max_logit_scale, self.gather, self.local_loss, self.reduction = (
            max_logit_scale,
            gather,
            local_loss,
            reduction,
        )

    @property
    def logit_scale(self) -> torch.Tensor:
        """Current scale ``exp(log_logit_scale)`` clamped at ``max_logit_scale`` (scalar tensor)."""
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)

    def forward(self, first: torch.Tensor, second: torch.Tensor,
                second_negatives: torch.Tensor | None = None) -> torch.Tensor:
        """Loss for paired (B, D) embeddings ``first`` and ``second``; ``second_negatives`` (K, D): extra
        keys for the ``first`` queries (see :func:`symmetric_info_nce_loss`), gathered like the pairs."""
        temperature = 1.0 / self.logit_scale
        if not (self.gather and is_distributed()):
            return symmetric_info_nce_loss(first, second, temperature, second_negatives=second_negatives,
                                           reduction=self.reduction)
        all_first = all_gather_with_grad(first)  # (W*B, D)
        all_second = all_gather_with_grad(second)  # (W*B, D)
        if second_negatives is not None and self.local_loss:
            raise ValueError("second_negatives with local_loss is not supported; set local_loss=False")
        if not self.local_loss:
            all_negatives = None if second_negatives is None else all_gather_with_grad(second_negatives)  # (W*K, D)
            return symmetric_info_nce_loss(all_first, all_second, temperature, second_negatives=all_negatives,
                                           reduction=self.reduction)
        offset = local_row_offset(first.shape[0])
        targets = torch.arange(first.shape[0], device=first.device) + offset  # (B,)
        return symmetric_info_nce_loss(
            first,
            second,
            temperature,
            first_keys=all_first,
            second_keys=all_second,
            targets=targets,
            reduction=self.reduction,
        )


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent_loss`; ``forward(first (N, D), second (N, D))``."""

    input_kind = "paired"

    def __init__(self, temperature: float = 0.5, reduction: str = "mean") -> None:
        super().__init__()
        self.temperature, self.reduction = temperature, reduction

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(first, second, self.temperature, self.reduction)


class NegativeQueue(nn.Module):
    """MoCo's FIFO queue of keys (He et al. 2020), used as ``negative_keys`` of :func:`info_nce_loss`.

    A ring buffer of ``size`` rows: :meth:`enqueue` appends keys (gathered from every rank when
    ``gather``) and drops the oldest ones once full; :meth:`dequeue` removes the oldest
    explicitly. The state is made of buffers, so it is saved in ``state_dict`` for resuming.

    Args:
        dim: key dimension D.
        size: capacity K.
        gather: enqueue the keys of every rank (MoCo's ``concat_all_gather``); no-op on one process.
    """

    def __init__(self, dim: int, size: int, gather: bool = True) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}.")
        self.register_buffer("keys", torch.zeros(size, dim))  # (K, D) ring buffer
        self.register_buffer("start", torch.zeros((), dtype=torch.long))  # oldest row
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # rows filled
        self.gather = gather

    def __len__(self) -> int:
        return int(self.count)

    def _order(self) -> torch.Tensor:
        """Ring indices of the stored rows, oldest first."""
        return (self.start + torch.arange(int(self.count), device=self.keys.device)) % self.keys.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Append (B, D) keys (detached); the oldest rows are dropped when the queue is full."""
        check_embeddings("keys", keys)
        if keys.shape[1] != self.keys.shape[1]:
            raise ValueError(
                f"keys has dimension {keys.shape[1]} but the queue holds {self.keys.shape[1]}; "
                "create the queue with dim equal to the key dimension."
            )
        keys = all_gather_no_grad(keys) if self.gather else keys.detach()
        size = self.keys.shape[0]
        keys = keys[-size:]  # more keys than capacity: only the newest fit
        num = keys.shape[0]
        write = (self.start + self.count + torch.arange(num, device=self.keys.device)) % size  # (num,)
        self.keys[write] = keys.to(self.keys.dtype)
        overflow = max(int(self.count) + num - size, 0)
        self.start.copy_((self.start + overflow) % size)
        self.count.copy_(torch.clamp(self.count + num, max=size))

    @torch.no_grad()
    def dequeue(self, num: int) -> torch.Tensor:
        """Remove and return the ``num`` oldest keys ((min(num, len), D))."""
        taken = self._order()[:num]
        out = self.keys[taken].clone()
        self.start.copy_((self.start + taken.shape[0]) % self.keys.shape[0])
        self.count.sub_(taken.shape[0])
        return out

    def negatives(self) -> torch.Tensor:
        """Stored keys, oldest first: (len, D), a copy (safe to enqueue before ``backward``)."""
        return self.keys[self._order()]  # advanced indexing copies
