"""Feature clustering: DeepCluster (Caron et al. 2018) and InterCLR (Xie et al. 2022).

DeepCluster alternates two steps. Every ``recluster_every`` optimizer steps
(:meth:`DeepCluster.on_step_start`, called by the trainer) it embeds the whole training set with
the tower (eval mode, no augmentation), PCA-whitens and L2-normalises the features, runs FAISS
k-means, and takes the cluster ids as pseudo-labels; the classification head is re-initialised
(its optimizer state cleared), and the training set is resampled uniformly over clusters (the
paper's fix for a few huge clusters absorbing the data). In between, the tower and head are
trained to predict the pseudo-labels of augmented views with cross-entropy.

Empty clusters: FAISS k-means already re-seeds a centroid that loses all its points during its
iterations (splitting a large cluster, as DeepCluster's own code does); clusters still empty in
the final assignment are counted and logged (``clusters_nonempty``) and get no samples.

InterCLR mixes intra-sample positives (two views of one item, NT-Xent) with inter-sample positives:
each view's positive is the memory-bank embedding of another member of its k-means cluster,
contrasted by InfoNCE against random memory-bank negatives. The memory bank holds a
momentum-averaged projection of every item; it is filled by embedding the data set at the first
round, and re-clustered every ``recluster_every`` steps (cheap: no encoder pass). Negatives are
drawn uniformly from the bank, so about 1/k of them share the query's cluster (the paper's
"random" negative sampling).

Both log, per round, the cluster sizes, the number of non-empty clusters and the normalised mutual
information (NMI) between the new and the previous assignment to ``<run_dir>/clusters.jsonl``
(a stable NMI near 1 means the pseudo-labels stopped moving), and the same scalars every step.
State (pseudo-labels, balanced order, memory bank, round) is made of buffers, so a resumed run
continues with the assignment it was trained on.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmssl.contrastive.collapse import collapse_logs
from mmssl.contrastive.data import encode_all
from mmssl.contrastive.heads import projection_head
from mmssl.distributed import all_gather_no_grad, all_gather_with_grad, broadcast_object, broadcast_parameters
from mmssl.losses import info_nce_loss, nt_xent_loss


def normalized_mutual_information(first: np.ndarray, second: np.ndarray) -> float:
    """NMI of two labelings (arithmetic-mean normalisation, as sklearn's default): 1 = same partition.

    (N,), (N,) integer labels -> float in [0, 1]; two single-cluster labelings give 1.
    """
    first, second = np.asarray(first), np.asarray(second)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"labelings must be two (N,) arrays of the same length, got {first.shape} and {second.shape}")
    _, a = np.unique(first, return_inverse=True)
    _, b = np.unique(second, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1)
    joint /= len(first)  # (Ca, Cb) joint distribution
    pa, pb = joint.sum(1), joint.sum(0)  # (Ca,), (Cb,)
    nonzero = joint > 0
    mutual = float((joint[nonzero] * np.log(joint[nonzero] / np.outer(pa, pb)[nonzero])).sum())
    entropy_a = float(-(pa * np.log(pa)).sum())
    entropy_b = float(-(pb * np.log(pb)).sum())
    if entropy_a == 0 and entropy_b == 0:
        return 1.0
    return max(0.0, mutual / ((entropy_a + entropy_b) / 2))


def kmeans_assign(features: torch.Tensor, num_clusters: int, pca_dim: int = 0, iterations: int = 20,
                  seed: int = 0) -> np.ndarray:
    """DeepCluster's clustering: PCA-whitening to ``pca_dim`` (0: none), L2-normalisation, FAISS k-means.

    Args:
        features: (N, D) features.
        num_clusters: k (at most N).
        pca_dim: output dimension of the whitening PCA (capped at min(D, N - 1)); 0 skips it.
        iterations: k-means iterations.
        seed: k-means initialisation seed.

    Returns:
        (N,) int64 cluster id of each row.
    """
    import faiss

    x = np.ascontiguousarray(features.detach().float().cpu().numpy())  # (N, D)
    n, dim = x.shape
    if not 1 <= num_clusters <= n:
        raise ValueError(f"num_clusters must be in [1, {n}] (the number of items), got {num_clusters}")
    if pca_dim > 0:
        out_dim = min(pca_dim, dim, n - 1)
        pca = faiss.PCAMatrix(dim, out_dim, -0.5)  # eigen_power -0.5: whitening
        pca.train(x)
        x = pca.apply(x)  # (N, out_dim)
    x = np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float32)
    kmeans = faiss.Kmeans(x.shape[1], num_clusters, niter=iterations, seed=seed, min_points_per_centroid=1,
                          max_points_per_centroid=max(256, math.ceil(n / num_clusters)), verbose=False)
    kmeans.train(x)
    _, assignment = kmeans.index.search(x, 1)  # (N, 1)
    return assignment[:, 0].astype(np.int64)


def balanced_order(assignment: torch.Tensor, num_clusters: int, generator: torch.Generator) -> torch.Tensor:
    """N item indices drawn uniformly over the non-empty clusters (DeepCluster's ``UnifLabelSampler``).

    Each non-empty cluster contributes ``ceil(N / nonempty)`` members (with replacement when it has
    fewer), shuffled and cut to N. (N,) long.
    """
    n = assignment.shape[0]
    sizes = torch.bincount(assignment, minlength=num_clusters)  # (k,)
    nonempty = torch.nonzero(sizes).squeeze(1)
    per_cluster = math.ceil(n / len(nonempty))
    members = torch.argsort(assignment, stable=True)  # (N,) items grouped by cluster
    starts = torch.cumsum(sizes, 0) - sizes  # (k,)
    picks = []
    for cluster in nonempty.tolist():
        size = int(sizes[cluster])
        if size >= per_cluster:
            offsets = torch.randperm(size, generator=generator)[:per_cluster]
        else:
            offsets = torch.cat([torch.arange(size), torch.randint(size, (per_cluster - size,), generator=generator)])
        picks.append(members[starts[cluster] + offsets])
    order = torch.cat(picks)
    return order[torch.randperm(len(order), generator=generator)][:n]


class _ClusterRounds(nn.Module):
    """Shared state and bookkeeping of a method that re-clusters its data every few steps."""

    def __init__(self, num_samples: int, num_clusters: int, recluster_every: int, seed: int):
        super().__init__()
        if num_clusters < 2 or num_clusters > num_samples:
            raise ValueError(f"num_clusters must be in [2, {num_samples}] (the training set size), got {num_clusters}")
        if recluster_every < 1:
            raise ValueError(f"recluster_every must be >= 1, got {recluster_every}")
        self.num_samples, self.num_clusters, self.recluster_every, self.seed = \
            num_samples, num_clusters, recluster_every, seed
        self.register_buffer("assignment", torch.zeros(num_samples, dtype=torch.long))  # (N,) pseudo-labels
        self.register_buffer("round", torch.tensor(-1))  # -1: not clustered yet
        self.round_logs: dict[str, float] = {}

    def _due(self, step: int) -> bool:
        return int(self.round) < 0 or step % self.recluster_every == 0

    def _record_round(self, trainer, assignment: np.ndarray, seconds: float) -> None:
        """Store the new assignment; log sizes and NMI with the previous one to clusters.jsonl."""
        assignment = broadcast_object(assignment)  # under torchrun every rank trains on rank 0's clusters
        previous = self.assignment.cpu().numpy().copy() if int(self.round) >= 0 else None
        self.assignment.copy_(torch.from_numpy(assignment))
        self.round.add_(1)
        sizes = np.bincount(assignment, minlength=self.num_clusters)
        nmi = normalized_mutual_information(previous, assignment) if previous is not None else float("nan")
        # every step logs these two; the NMI exists from the second round on, so it goes to
        # clusters.jsonl and stdout only (a per-step key present in some steps would skew window means)
        self.round_logs = {"clusters_nonempty": float((sizes > 0).sum()),
                           "largest_cluster_fraction": float(sizes.max() / len(assignment))}
        if trainer is not None and trainer.is_main:
            row = {"step": trainer.step, "round": int(self.round), "nonempty": int((sizes > 0).sum()),
                   "nmi_previous": None if previous is None else round(nmi, 4), "seconds": round(seconds, 2),
                   "sizes": sorted(sizes.tolist(), reverse=True)}
            print(f"[mmssl] clustering round {row['round']} at step {row['step']}: {row['nonempty']}/"
                  f"{self.num_clusters} clusters non-empty, largest {row['sizes'][0]}, NMI with previous "
                  f"{row['nmi_previous']}, {row['seconds']} s")
            Path(trainer.run_dir).mkdir(parents=True, exist_ok=True)
            with open(Path(trainer.run_dir) / "clusters.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")


class DeepCluster(_ClusterRounds):
    """Tower + linear classifier over k pseudo-classes from periodic k-means of the tower's features.

    Args:
        encoder: the tower; exported for dual encoders.
        num_samples: N, the training set size (the pseudo-labels are one per item).
        num_clusters: k (the paper: 10x the number of classes; we default to a few per class).
        recluster_every: optimizer steps between rounds (the paper: one epoch).
        pca_dim: whitening PCA dimension before k-means (the paper: 256); 0 skips it.
        kmeans_iterations: FAISS k-means iterations per round.
        balanced: resample the training set uniformly over clusters after each round (needs
            ``num_workers = 0``: workers would keep a stale copy of the order).
        seed: base seed of k-means and of the balanced order.

    Batch: ``{"view1": inputs, "index": (B,)}``; ``index`` is the item each view was made from.
    """

    view_kind = "one_augmented"

    def __init__(self, encoder: nn.Module, num_samples: int, num_clusters: int = 100, recluster_every: int = 100,
                 pca_dim: int = 64, kmeans_iterations: int = 20, balanced: bool = True, seed: int = 0):
        super().__init__(num_samples, num_clusters, recluster_every, seed)
        self.encoder = encoder
        self.head = nn.Linear(encoder.output_dim, num_clusters)
        self.pca_dim, self.kmeans_iterations, self.balanced = pca_dim, kmeans_iterations, balanced
        self.register_buffer("sample_order", torch.arange(num_samples))  # (N,) balanced resampling

    def cluster(self, dataset, trainer=None) -> np.ndarray:
        """One round: embed ``dataset`` (a :class:`~mmssl.contrastive.data.ViewDataset`), cluster,
        store the pseudo-labels, reset the head, and make the balanced order. Returns the assignment."""
        if len(dataset) != self.num_samples:
            raise ValueError(f"DeepCluster was built for {self.num_samples} items but the dataset has {len(dataset)}")
        start = time.perf_counter()
        features = encode_all(self.encoder, dataset)  # (N, D)
        assignment = kmeans_assign(features, self.num_clusters, self.pca_dim, self.kmeans_iterations,
                                   seed=self.seed + int(self.round) + 1)
        self._record_round(trainer, assignment, time.perf_counter() - start)
        self.head.reset_parameters()
        broadcast_parameters(self.head)
        if trainer is not None:
            for param in self.head.parameters():
                trainer.optimizer.state.pop(param, None)  # Adam moments of the old head mean nothing now
        generator = torch.Generator().manual_seed(self.seed * 7919 + int(self.round))
        order = balanced_order(self.assignment.cpu(), self.num_clusters, generator) if self.balanced \
            else torch.arange(self.num_samples)
        self.sample_order.copy_(order)
        return assignment

    def on_step_start(self, trainer) -> None:
        """Trainer hook: re-cluster when due, and point the dataset at the balanced order."""
        if self.balanced and trainer.config.num_workers > 0:
            raise ValueError("DeepCluster's balanced sampling changes the data order between rounds, which "
                             "DataLoader workers would not see; set num_workers=0 or balanced=False")
        if self._due(trainer.step):
            self.cluster(trainer.dataset, trainer)
        elif not self.round_logs:  # resumed: the assignment came from the checkpoint
            sizes = torch.bincount(self.assignment, minlength=self.num_clusters)
            self.round_logs = {"clusters_nonempty": float((sizes > 0).sum()),
                               "largest_cluster_fraction": float(sizes.max()) / self.num_samples}
        trainer.dataset.index_map = self.sample_order.cpu() if self.balanced else None

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        if int(self.round) < 0:
            raise RuntimeError("DeepCluster has no pseudo-labels yet: train it with the Trainer (which calls "
                               "on_step_start) or call method.cluster(dataset) first")
        features = self.encoder(batch["view1"])  # (B, D)
        logits = self.head(features)  # (B, k)
        targets = self.assignment[batch["index"]]  # (B,)
        loss = F.cross_entropy(logits, targets)
        logs = {**collapse_logs(features), **self.round_logs}
        logs["pseudo_label_accuracy"] = float((logits.argmax(1) == targets).float().mean())
        return loss, logs


class InterCLR(_ClusterRounds):
    """SimCLR-style instance discrimination plus cluster-neighbour positives from a memory bank.

    Args:
        encoder: the tower; exported for dual encoders.
        num_samples: N, the training set size (memory bank rows).
        num_clusters: k of the online k-means over the bank.
        recluster_every: optimizer steps between k-means rounds.
        projection_dim, hidden_dim: the projection head (as in SimCLR).
        temperature: of both terms.
        num_negatives: memory-bank negatives per query in the inter-sample term.
        bank_momentum: ``bank[i] <- normalise(m bank[i] + (1 - m) z_i)``.
        inter_weight: weight of the inter-sample term (the intra-sample term has weight 1).
        seed: k-means seed.

    Batch: ``{"view1": inputs, "view2": inputs, "index": (B,)}``.
    """

    view_kind = "two_augmented"

    def __init__(self, encoder: nn.Module, num_samples: int, num_clusters: int = 100, recluster_every: int = 100,
                 projection_dim: int = 128, hidden_dim: int = 512, temperature: float = 0.2,
                 num_negatives: int = 1024, bank_momentum: float = 0.5, inter_weight: float = 1.0, seed: int = 0):
        super().__init__(num_samples, num_clusters, recluster_every, seed)
        self.encoder = encoder
        self.head = projection_head(encoder.output_dim, hidden_dim, projection_dim)
        self.temperature, self.num_negatives = temperature, num_negatives
        self.bank_momentum, self.inter_weight = bank_momentum, inter_weight
        self.register_buffer("bank", F.normalize(torch.randn(num_samples, projection_dim), dim=1))  # (N, P)

    def embed(self, inputs) -> torch.Tensor:
        """(B, projection_dim) L2-normalised projections."""
        return F.normalize(self.head(self.encoder(inputs)), dim=1)

    def cluster(self, dataset=None, trainer=None) -> np.ndarray:
        """One round: fill the bank from ``dataset`` on the first round, then k-means of the bank."""
        start = time.perf_counter()
        if int(self.round) < 0 and dataset is not None:
            was_training = self.head.training
            self.head.eval()
            with torch.no_grad():
                self.bank.copy_(F.normalize(encode_all(self.encoder, dataset, project=self.head), dim=1))
            self.head.train(was_training)
        assignment = kmeans_assign(self.bank, self.num_clusters, 0, 20, seed=self.seed + int(self.round) + 1)
        self._record_round(trainer, assignment, time.perf_counter() - start)
        return assignment

    def on_step_start(self, trainer) -> None:
        """Trainer hook: re-cluster the bank when due."""
        if self._due(trainer.step):
            self.cluster(trainer.dataset, trainer)

    def _cluster_neighbours(self, index: torch.Tensor) -> torch.Tensor:
        """For each item, a random other member of its cluster (itself when alone): (B,) indices."""
        sizes = torch.bincount(self.assignment, minlength=self.num_clusters)  # (k,)
        members = torch.argsort(self.assignment, stable=True)  # (N,)
        starts = torch.cumsum(sizes, 0) - sizes  # (k,)
        cluster = self.assignment[index]  # (B,)
        offsets = (torch.rand(index.shape, device=index.device) * sizes[cluster]).long()  # (B,)
        return members[starts[cluster] + offsets]

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        index = batch["index"]  # (B,)
        first, second = self.embed(batch["view1"]), self.embed(batch["view2"])  # (B, P) each
        intra = nt_xent_loss(all_gather_with_grad(first), all_gather_with_grad(second), self.temperature)
        logs = collapse_logs(first)
        loss = intra
        if int(self.round) >= 0:
            positives = self.bank[self._cluster_neighbours(index)]  # (B, P)
            noise = torch.randint(self.num_samples, (index.shape[0], self.num_negatives), device=index.device)
            negatives = self.bank[noise]  # (B, K, P)
            inter = (info_nce_loss(first, positives, negatives, self.temperature)
                     + info_nce_loss(second, positives, negatives, self.temperature)) / 2
            loss = intra + self.inter_weight * inter
            logs.update(intra_loss=intra.item(), inter_loss=inter.item(), **self.round_logs)
        with torch.no_grad():  # every rank's batch updates every rank's bank
            mean = all_gather_no_grad(F.normalize((first + second) / 2, dim=1))  # (W*B, P)
            index = all_gather_no_grad(index)  # (W*B,)
            updated = self.bank_momentum * self.bank[index] + (1 - self.bank_momentum) * mean
            self.bank[index] = F.normalize(updated, dim=1)
        return loss, logs
