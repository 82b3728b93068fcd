"""Every contrastive method by name, built from one typed config: ``METHODS[name](encoder, config, ...)``.

All builders share one signature, ``(encoder, config, num_samples, make_tower) -> method``:
``encoder`` is the tower to pretrain (exported as ``method.encoder``), ``num_samples`` the
training set size (memory banks, pseudo-labels) and ``make_tower()`` builds one more tower of the
same config (CMC's other views). Each method's ``view_kind`` says what samples it needs
(:func:`mmssl.recipes.contrastive.make_views`). Every entry is enrolled in the contract test
``tests/contrastive/test_method_contract.py``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Literal

from torch import nn

from mmssl.contrastive.cmc import CMC
from mmssl.contrastive.deepcluster import DeepCluster, InterCLR
from mmssl.contrastive.simclr import SimCLR
from mmssl.contrastive.supervised import SupervisedMetric
from mmssl.losses import LOSSES


@dataclass
class ContrastiveConfig:
    """Hyper-parameters of the contrastive methods (each method reads the fields it uses)."""

    temperature: float = 0.2
    projection_dim: int = 128
    hidden_dim: int = 512  # projection head's hidden layer (0: linear)
    # moco
    queue_size: int = 4096
    momentum: float = 0.99  # key encoder EMA
    # deepcluster, interclr
    num_clusters: int = 100
    recluster_every: int = 100  # optimizer steps between k-means rounds
    pca_dim: int = 64  # deepcluster: whitening PCA before k-means (0: none)
    kmeans_iterations: int = 20
    balanced: bool = True  # deepcluster: resample uniformly over clusters
    inter_weight: float = 1.0  # interclr: weight of the cluster-neighbour term
    # interclr, cmc memory banks
    num_negatives: int = 1024
    bank_momentum: float = 0.5
    # cmc
    views: list[str] = field(default_factory=list)  # [] = image: luma, chroma; code: body, signature, docstring
    objective: Literal["info_nce", "nce"] = "info_nce"
    memory_bank: bool = False
    # supervised
    loss: str = "triplet"  # a labelled loss of mmssl.losses.LOSSES
    margin: float = 0.2
    mining: str = "hard"
    seed: int = 0


def _simclr(encoder, c: ContrastiveConfig, num_samples: int, make_tower: Callable) -> SimCLR:
    return SimCLR(encoder, c.projection_dim, c.hidden_dim, c.temperature)


def _moco(encoder, c: ContrastiveConfig, num_samples: int, make_tower: Callable) -> SimCLR:
    return SimCLR(encoder, c.projection_dim, c.hidden_dim, c.temperature, queue_size=c.queue_size,
                  momentum=c.momentum)


def _deepcluster(encoder, c: ContrastiveConfig, num_samples: int, make_tower: Callable) -> DeepCluster:
    return DeepCluster(encoder, num_samples, c.num_clusters, c.recluster_every, c.pca_dim, c.kmeans_iterations,
                       c.balanced, c.seed)


def _interclr(encoder, c: ContrastiveConfig, num_samples: int, make_tower: Callable) -> InterCLR:
    return InterCLR(encoder, num_samples, c.num_clusters, c.recluster_every, c.projection_dim, c.hidden_dim,
                    c.temperature, c.num_negatives, c.bank_momentum, c.inter_weight, c.seed)


def cmc_views(c: ContrastiveConfig, modality: str) -> list[str]:
    """The CMC views of a run: the configured ones, else the modality's defaults."""
    return list(c.views) or (["luma", "chroma"] if modality == "image" else ["body", "signature", "docstring"])


def _cmc(encoder, c: ContrastiveConfig, num_samples: int, make_tower: Callable) -> CMC:
    views = cmc_views(c, encoder.modality)
    encoders = [encoder] + [make_tower() for _ in views[1:]]
    return CMC(encoders, views, num_samples, c.projection_dim, c.temperature, c.objective, c.memory_bank,
               c.num_negatives, c.bank_momentum)


def _supervised(encoder, c: ContrastiveConfig, num_samples: int, make_tower: Callable) -> SupervisedMetric:
    if c.loss not in LOSSES:
        raise ValueError(f"unknown loss {c.loss!r}; known: {', '.join(LOSSES)}")
    accepted = inspect.signature(LOSSES[c.loss].__init__).parameters
    options = {k: v for k, v in (("margin", c.margin), ("mining", c.mining), ("temperature", c.temperature))
               if k in accepted}
    return SupervisedMetric(encoder, c.loss, c.projection_dim, c.hidden_dim, **options)


METHOD_CLASSES: dict[str, type[nn.Module]] = {"simclr": SimCLR, "moco": SimCLR, "deepcluster": DeepCluster,
                                               "interclr": InterCLR, "cmc": CMC, "supervised": SupervisedMetric}

MethodBuilder = Callable[[nn.Module, ContrastiveConfig, int, Callable[[], nn.Module]], nn.Module]

METHODS: dict[str, MethodBuilder] = {
    "simclr": _simclr,
    "moco": _moco,
    "deepcluster": _deepcluster,
    "interclr": _interclr,
    "cmc": _cmc,
    "supervised": _supervised,
}


def view_kind(name: str) -> str:
    """What samples method ``name`` trains on: ``two_augmented``, ``one_augmented``, ``split`` or ``labelled``."""
    if name not in METHODS:
        raise KeyError(f"unknown contrastive method {name!r}; known: {', '.join(METHODS)}")
    return METHOD_CLASSES[name].view_kind


def build_method(name: str, encoder: nn.Module, config: ContrastiveConfig | None = None, *, num_samples: int,
                 make_tower: Callable[[], nn.Module] | None = None) -> nn.Module:
    """``METHODS[name](...)`` with a clear error for an unknown name or a missing tower factory."""
    if name not in METHODS:
        raise KeyError(f"unknown contrastive method {name!r}; known: {', '.join(METHODS)}")
    if make_tower is None:
        def make_tower():
            raise ValueError(f"method {name!r} needs more towers (one per view); pass make_tower")
    return METHODS[name](encoder, config or ContrastiveConfig(), num_samples, make_tower)
