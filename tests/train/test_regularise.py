import pytest
import torch
from torch import nn

from mmssl.train.regularise import L2SPRegularised, l2sp_penalty


class TinyMethod(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(3, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.log_logit_scale = nn.Parameter(torch.tensor(2.0))

    def loss(self, batch):
        return (self.layer(batch) * self.log_logit_scale).pow(2).mean(), {"task": 1.5}


def test_penalty_matches_a_naive_loop():
    torch.manual_seed(1)
    params, anchors = [torch.randn(4, 3), torch.randn(5)], [torch.randn(4, 3), torch.randn(5)]
    naive = sum(float(x - y) ** 2 for p, a in zip(params, anchors) for x, y in zip(p.flatten(), a.flatten()))
    assert float(l2sp_penalty(params, anchors)) == pytest.approx(naive, rel=1e-6)
    with pytest.raises(ValueError, match="1 parameters but 2 anchors"):
        l2sp_penalty(params[:1], anchors)


def test_zero_at_the_start_and_the_weight_scales_the_distance_moved():
    method = TinyMethod()
    regularised = L2SPRegularised(method, weight=0.5)
    assert regularised.names == ["layer.weight", "layer.bias"]  # frozen and the logit scale are free
    batch = torch.ones(4, 3)
    loss, logs = regularised.loss(batch)
    assert float(loss.detach()) == pytest.approx(float(method.loss(batch)[0].detach())) and logs == {"task": 1.5, "l2sp": 0.0}
    with torch.no_grad():
        method.layer.weight.add_(0.1)  # 6 entries moved by 0.1
        method.log_logit_scale.add_(5.0)  # free: not penalised
    loss, logs = regularised.loss(batch)
    assert logs["l2sp"] == pytest.approx(6 * 0.01, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(method.loss(batch)[0].detach()) + 0.5 * 0.06, rel=1e-5)


def test_gradient_of_the_penalty_points_back_to_the_start():
    method = TinyMethod()
    regularised = L2SPRegularised(method, weight=1.0)
    start = method.layer.bias.detach().clone()
    with torch.no_grad():
        method.layer.bias.add_(torch.tensor([0.3, -0.2]))
    regularised.penalty().backward()
    assert torch.allclose(method.layer.bias.grad, 2 * (method.layer.bias.detach() - start))


def test_state_dict_is_the_wrapped_methods():
    method = TinyMethod()
    regularised = L2SPRegularised(method, weight=1.0)
    assert list(regularised.state_dict()) == list(method.state_dict())
    other = TinyMethod()
    with torch.no_grad():
        other.layer.bias.fill_(7.0)
    regularised.load_state_dict(other.state_dict())
    assert torch.all(method.layer.bias == 7.0)
    with pytest.raises(ValueError, match=">= 0"):
        L2SPRegularised(method, weight=-1.0)
