"""Evaluation: retrieval metrics, the CodeSearchNet and image–text protocols, BM25, frozen-feature probes.

- ``metrics``: ranks of the gold, Recall@K, MRR, NDCG@K (pessimistic ties), random baselines.
- ``codesearchnet``: 1 gold among 999 distractors in fixed groups of 1000 (Husain et al., 2019).
- ``image_text``: text→image / image→text Recall@K, relevance by identical normalised caption.
- ``bm25``: vectorised Okapi BM25 over code tokens (identifier splitting), the lexical baseline.
- ``probe``: linear-probe and weighted-kNN accuracy on frozen features.
- ``evaluate``: a saved model on a held-out split with its baselines (``python -m mmssl eval``).
"""

from mmssl.eval.bm25 import BM25Index, lexical_terms, split_identifier
from mmssl.eval.codesearchnet import codesearchnet_eval, codesearchnet_groups, codesearchnet_mrr
from mmssl.eval.evaluate import evaluate_code, evaluate_image, format_table
from mmssl.eval.image_text import caption_relevance, image_text_recall, normalize_caption
from mmssl.eval.metrics import (
    mean_reciprocal_rank,
    ndcg_at_k,
    random_baseline,
    ranks_of_gold,
    recall_at_k,
    retrieval_metrics,
)
from mmssl.eval.probe import knn_accuracy, linear_probe_accuracy

__all__ = [
    "BM25Index",
    "caption_relevance",
    "codesearchnet_eval",
    "codesearchnet_groups",
    "codesearchnet_mrr",
    "evaluate_code",
    "evaluate_image",
    "format_table",
    "image_text_recall",
    "knn_accuracy",
    "lexical_terms",
    "linear_probe_accuracy",
    "mean_reciprocal_rank",
    "ndcg_at_k",
    "normalize_caption",
    "random_baseline",
    "ranks_of_gold",
    "recall_at_k",
    "retrieval_metrics",
    "split_identifier",
]
