"""Unimodal contrastive pretraining of towers: instance discrimination (SimCLR, MoCo queue), feature
clustering (DeepCluster, InterCLR), multiview coding (CMC), and supervised metric learning.

Every method is an ``nn.Module`` with ``loss(batch) -> (loss, logs)`` and the pretrained tower at
``.encoder``, so the one trainer trains it and its checkpoint initialises a dual-encoder tower
(``TowerConfig(pretrained=<run dir>)``). Methods by name: :data:`METHODS`; the run recipe:
:func:`mmssl.recipes.contrastive.pretrain_contrastive`.
"""

from mmssl.contrastive.cmc import CMC
from mmssl.contrastive.collapse import RepresentationCollapseWarning, collapse_logs
from mmssl.contrastive.deepcluster import DeepCluster, InterCLR, kmeans_assign, normalized_mutual_information
from mmssl.contrastive.registry import METHODS, ContrastiveConfig, build_method, view_kind
from mmssl.contrastive.simclr import SimCLR
from mmssl.contrastive.supervised import SupervisedMetric

__all__ = ["CMC", "METHODS", "ContrastiveConfig", "DeepCluster", "InterCLR", "RepresentationCollapseWarning",
           "SimCLR", "SupervisedMetric", "build_method", "collapse_logs", "kmeans_assign",
           "normalized_mutual_information", "view_kind"]
