"""InfoNCE family: loop references, open_clip ClipLoss, pml NTXentLoss, learnable scale, MoCo queue."""

import math

import pytest
import torch
from open_clip.loss import ClipLoss
from pytorch_metric_learning import losses as pml_losses

from mmssl.losses import (
    NegativeQueue,
    SymmetricInfoNCELoss,
    info_nce_loss,
    nt_xent_loss,
    symmetric_info_nce_loss,
)


def loop_info_nce(query, positive_key, negatives_of, temperature):
    """negatives_of(i) -> list of negative key vectors for query i."""
    terms = []
    for i in range(query.shape[0]):
        positive = torch.exp(query[i] @ positive_key[i] / temperature)
        negatives = sum(torch.exp(query[i] @ key / temperature) for key in negatives_of(i))
        terms.append(-torch.log(positive / (positive + negatives)))
    return torch.stack(terms).mean()


def test_in_batch_negatives_match_loop_reference(paired_batch, matches_reference):
    def reference(q, k):
        return loop_info_nce(q, k, lambda i: [k[j] for j in range(k.shape[0]) if j != i], 0.3)

    loss = matches_reference(lambda q, k: info_nce_loss(q, k, temperature=0.3), reference, *paired_batch)
    assert loss > 0.1


def test_shared_and_per_query_negatives_match_loop_reference(paired_batch, matches_reference):
    generator = torch.Generator().manual_seed(7)
    shared = torch.randn(9, 5, generator=generator, dtype=torch.float64)
    per_query = torch.randn(7, 4, 5, generator=generator, dtype=torch.float64)
    matches_reference(
        lambda q, k, n: info_nce_loss(q, k, n, temperature=0.5),
        lambda q, k, n: loop_info_nce(q, k, lambda i: list(n), 0.5),
        *paired_batch,
        shared,
    )
    matches_reference(
        lambda q, k, n: info_nce_loss(q, k, n, temperature=0.5),
        lambda q, k, n: loop_info_nce(q, k, lambda i: list(n[i]), 0.5),
        *paired_batch,
        per_query,
    )


def loop_symmetric(first, second, temperature):
    n = first.shape[0]
    forward = loop_info_nce(first, second, lambda i: [second[j] for j in range(n) if j != i], temperature)
    backward = loop_info_nce(second, first, lambda i: [first[j] for j in range(n) if j != i], temperature)
    return (forward + backward) / 2


def test_symmetric_matches_loop_reference(paired_batch, matches_reference):
    matches_reference(
        lambda a, b, t: symmetric_info_nce_loss(a, b, t),
        loop_symmetric,
        *paired_batch,
        torch.tensor(0.2, dtype=torch.float64),
    )


def test_symmetric_with_extra_negatives_matches_loop_reference(paired_batch, matches_reference):
    first, second = paired_batch
    negatives = torch.randn(4, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)

    def reference(a, b, extra, t):
        n = a.shape[0]
        forward = loop_info_nce(a, b, lambda i: [b[j] for j in range(n) if j != i] + list(extra), t)
        backward = loop_info_nce(b, a, lambda i: [a[j] for j in range(n) if j != i], t)  # unchanged
        return (forward + backward) / 2

    loss = matches_reference(lambda a, b, extra, t: symmetric_info_nce_loss(a, b, t, second_negatives=extra),
                             reference, first, second, negatives, torch.tensor(0.2, dtype=torch.float64))
    assert loss > symmetric_info_nce_loss(first, second, 0.2)  # more negatives, a harder task
    module = SymmetricInfoNCELoss(init_temperature=0.2)
    torch.testing.assert_close(module(first, second, negatives).detach(),
                               symmetric_info_nce_loss(first, second, 0.2, second_negatives=negatives))
    with pytest.raises(ValueError, match="default keys"):
        symmetric_info_nce_loss(first, second, 0.2, second_keys=second, second_negatives=negatives)


def test_symmetric_equals_open_clip_cliploss(paired_batch, matches_reference):
    first, second = (torch.nn.functional.normalize(x, dim=1) for x in paired_batch)
    log_scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64)
    matches_reference(
        lambda a, b, s: symmetric_info_nce_loss(a, b, 1 / s.exp()),
        lambda a, b, s: ClipLoss()(a, b, s.exp()),
        first,
        second,
        log_scale,
    )


def test_module_stores_log_scale_initialised_and_clamped_like_clip(paired_batch):
    first, second = paired_batch
    module = SymmetricInfoNCELoss().double()
    assert isinstance(module.log_logit_scale, torch.nn.Parameter)
    assert math.isclose(float(module.log_logit_scale.detach()), math.log(1 / 0.07), rel_tol=1e-6)
    torch.testing.assert_close(
        module(first, second), ClipLoss()(first, second, module.logit_scale.detach()), rtol=1e-6, atol=0
    )
    with torch.no_grad():
        module.log_logit_scale.fill_(math.log(250.0))
    assert float(module.logit_scale.detach()) == 100.0
    loss = module(first, second)
    loss.backward()
    torch.testing.assert_close(loss, ClipLoss()(first, second, torch.tensor(100.0)).double(), rtol=1e-6, atol=0)
    assert float(module.log_logit_scale.grad) == 0.0  # clamped: no push beyond 100
    assert "log_logit_scale" not in dict(SymmetricInfoNCELoss(learnable=False).named_parameters())


def test_local_keys_and_targets_reproduce_the_full_loss(paired_batch):
    """The "local loss" split: queries of each half against all keys, averaged over halves."""
    first, second = paired_batch
    full = symmetric_info_nce_loss(first, second, 0.3)
    halves = []
    for rows in (torch.arange(0, 4), torch.arange(4, 7)):
        share = symmetric_info_nce_loss(
            first[rows], second[rows], 0.3, first_keys=first, second_keys=second, targets=rows, reduction="sum"
        )
        halves.append(share)
    torch.testing.assert_close(sum(halves) / 7, full, rtol=1e-12, atol=0)


def loop_nt_xent(first, second, temperature):
    views = torch.cat([first, second])
    views = views / views.norm(dim=1, keepdim=True)
    n = first.shape[0]
    terms = []
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        numerator = torch.exp(views[i] @ views[partner] / temperature)
        denominator = sum(torch.exp(views[i] @ views[k] / temperature) for k in range(2 * n) if k != i)
        terms.append(-torch.log(numerator / denominator))
    return torch.stack(terms).mean()


def test_nt_xent_matches_loop_reference(paired_batch, matches_reference):
    loss = matches_reference(
        lambda a, b: nt_xent_loss(a, b, 0.5), lambda a, b: loop_nt_xent(a, b, 0.5), *paired_batch
    )
    assert loss > 0.5


def test_nt_xent_agrees_with_pytorch_metric_learning(paired_batch, matches_reference):
    labels = torch.arange(7).repeat(2)
    peer = pml_losses.NTXentLoss(temperature=0.2)
    matches_reference(
        lambda a, b: nt_xent_loss(a, b, 0.2), lambda a, b: peer(torch.cat([a, b]), labels), *paired_batch
    )


def test_queue_is_fifo_and_wraps():
    queue = NegativeQueue(dim=2, size=5)
    assert len(queue) == 0 and queue.negatives().shape == (0, 2)
    keys = torch.arange(16, dtype=torch.float32).view(8, 2)
    queue.enqueue(keys[:3])
    queue.enqueue(keys[3:6])  # 6 keys into 5 slots: key 0 is dropped
    torch.testing.assert_close(queue.negatives(), keys[1:6])
    torch.testing.assert_close(queue.dequeue(2), keys[1:3])
    queue.enqueue(keys[6:8])
    torch.testing.assert_close(queue.negatives(), keys[3:8])
    restored = NegativeQueue(dim=2, size=5)
    restored.load_state_dict(queue.state_dict())
    torch.testing.assert_close(restored.negatives(), keys[3:8])
    queue.enqueue(torch.arange(14, dtype=torch.float32).view(7, 2))  # more than capacity: newest 5
    torch.testing.assert_close(queue.negatives(), torch.arange(4, 14, dtype=torch.float32).view(5, 2))


def test_queue_negatives_in_info_nce_and_enqueue_before_backward(paired_batch, matches_reference):
    first, second = paired_batch
    queue = NegativeQueue(dim=5, size=10).double()
    queue.enqueue(second[:4] * 2)
    matches_reference(
        lambda q, k: info_nce_loss(q, k, queue.negatives(), temperature=0.4),
        lambda q, k: loop_info_nce(q, k, lambda i: list(second[:4] * 2), 0.4),
        first,
        second,
    )
    query = first.clone().requires_grad_(True)
    loss = info_nce_loss(query, second, queue.negatives(), temperature=0.4)
    queue.enqueue(second)  # MoCo enqueues the keys before the optimiser step
    loss.backward()
    assert torch.isfinite(query.grad).all() and query.grad.abs().sum() > 0


def test_bad_input(paired_batch):
    first, second = paired_batch
    with pytest.raises(ValueError, match="first has shape \\(7, 5\\) but second has shape \\(6, 5\\)"):
        symmetric_info_nce_loss(first, second[:6])
    with pytest.raises(ValueError, match="query has feature dimension 5 but negative_keys has 4"):
        info_nce_loss(first, second, torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt_xent_loss(first, second, temperature=-1.0)
    with pytest.raises(ValueError, match="keys has dimension 3 but the queue holds 5"):
        NegativeQueue(dim=5, size=4).enqueue(torch.zeros(2, 3))
