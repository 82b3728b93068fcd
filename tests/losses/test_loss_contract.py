"""One contract, every registered loss: finite values and gradients, defined edge cases, clear errors."""

import pytest
import torch

from mmssl.losses import LOSSES, build_loss

NUM_NOISE_ITEMS = 6


def make_loss(name):
    if name == "nce":
        return build_loss(name, noise_probs=torch.linspace(1.0, 2.0, NUM_NOISE_ITEMS), num_noise=3)
    return build_loss(name)


def make_inputs(loss, batch, dtype=torch.float64, scale=1.0, labels=None, identical=False, seed=0):
    """Arguments for ``loss.forward`` by its ``input_kind``; returns (args, differentiable leaves)."""
    generator = torch.Generator().manual_seed(seed)

    def leaf(*shape):
        values = torch.randn(*shape, generator=generator, dtype=torch.float64)
        if identical:
            values = values[:1].expand_as(values).clone()
        return (values * scale).to(dtype).requires_grad_(True)

    if loss.input_kind == "labelled":
        embeddings = leaf(batch, 5)
        labels = torch.arange(batch) % 3 if labels is None else labels
        return (embeddings, labels), [embeddings]
    if loss.input_kind == "paired":
        first, second = leaf(batch, 5), leaf(batch, 5)
        return (first, second), [first, second]
    data_scores, noise_scores = leaf(batch), leaf(batch, 3)
    data_indices = torch.randint(NUM_NOISE_ITEMS, (batch,), generator=generator)
    noise_indices = torch.randint(NUM_NOISE_ITEMS, (batch, 3), generator=generator)
    return (data_scores, noise_scores, data_indices, noise_indices), [data_scores, noise_scores]


def run(loss, args, leaves):
    value = loss(*args)
    grads = torch.autograd.grad(value, leaves + [p for p in loss.parameters()], allow_unused=True)
    return value.detach(), grads


def all_finite(grads):
    return all(g is not None and bool(torch.isfinite(g).all()) for g in grads)


def test_registry_covers_every_loss_in_the_issue():
    assert set(LOSSES) == {
        "contrastive",
        "triplet",
        "npair",
        "lifted_structure",
        "generalized_lifted_structure",
        "nce",
        "info_nce",
        "symmetric_info_nce",
        "nt_xent",
        "soft_nearest_neighbour",
    }
    with pytest.raises(ValueError, match="loss='arcface' is not supported"):
        build_loss("arcface")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_finite_loss_and_every_input_and_parameter_gets_a_gradient(name):
    loss = make_loss(name).double()
    args, leaves = make_inputs(loss, batch=9)
    value, grads = run(loss, args, leaves)
    assert value.shape == () and bool(torch.isfinite(value)) and float(value) > 0
    assert all_finite(grads)
    assert all(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_batch_of_one(name):
    """No pair exists: 0 with zero gradient. N-pair keeps its regulariser; NCE has no pairs."""
    loss = make_loss(name).double()
    args, leaves = make_inputs(loss, batch=1)
    value, grads = run(loss, args, leaves)
    assert all_finite(grads)
    if name == "npair":
        expected = 0.001 * sum(float(x.detach().pow(2).sum()) for x in leaves)
        assert float(value) == pytest.approx(expected, rel=1e-9)
    elif name == "nce":
        assert bool(torch.isfinite(value)) and float(value) > 0
    else:
        assert float(value) == 0.0
        assert all(float(g.abs().sum()) == 0.0 for g in grads)


LABELLED = sorted(name for name in LOSSES if make_loss(name).input_kind == "labelled")


@pytest.mark.parametrize("labelling", ["no_positive", "no_negative"])
@pytest.mark.parametrize("name", LABELLED)
def test_no_valid_positive_or_negative_gives_zero_with_zero_grad(name, labelling):
    """Contrastive still has the other kind of pair; every other labelled loss has no term left
    (soft nearest neighbours with one class: the ratio is exactly 1)."""
    loss = make_loss(name).double()
    labels = torch.arange(8) if labelling == "no_positive" else torch.zeros(8, dtype=torch.long)
    args, leaves = make_inputs(loss, batch=8, labels=labels, scale=0.1)  # negatives inside the margin
    value, grads = run(loss, args, leaves)
    assert all_finite(grads)
    if name == "contrastive":
        assert float(value) > 0
    else:
        assert float(value) == 0.0
        assert all(float(g.abs().sum()) == 0.0 for g in grads[:1])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_all_equal_embeddings_are_finite(name):
    loss = make_loss(name).double()
    args, leaves = make_inputs(loss, batch=6, identical=True)
    value, grads = run(loss, args, leaves)
    assert bool(torch.isfinite(value)) and all_finite(grads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_large_values_stay_finite(name, dtype):
    loss = make_loss(name)
    args, leaves = make_inputs(loss, batch=8, dtype=dtype, scale=1e4)
    value, grads = run(loss, args, leaves)
    assert bool(torch.isfinite(value)) and float(value) > 0
    assert all_finite(grads)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_nan_input_is_a_clear_value_error(name):
    loss = make_loss(name)
    args, _ = make_inputs(loss, batch=4)
    bad = args[0].detach().clone()
    bad[1, ...] = float("nan")
    argument = {"labelled": "embeddings", "paired": None, "noise": "data_scores"}[loss.input_kind]
    with pytest.raises(ValueError, match=f"{argument or ''}.*contains NaN or inf"):
        loss(bad, *args[1:])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_wrong_length_labels_or_partner_is_a_clear_value_error(name):
    loss = make_loss(name)
    args, _ = make_inputs(loss, batch=4)
    if loss.input_kind == "labelled":
        with pytest.raises(ValueError, match="labels has shape \\(3,\\) but embeddings has 4 rows"):
            loss(args[0], args[1][:3])
    elif loss.input_kind == "paired":
        with pytest.raises(ValueError, match="has shape \\(4, 5\\) but .* has shape \\(3, 5\\)"):
            loss(args[0], args[1][:3])
    else:
        with pytest.raises(ValueError, match="noise_scores has 3 rows but data_scores has 4"):
            loss(args[0], args[1][:3], args[2], args[3][:3])
