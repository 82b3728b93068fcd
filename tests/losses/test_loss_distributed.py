"""Global-batch symmetric InfoNCE over 2 gloo processes equals 1 process on the concatenated batch."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmssl.distributed import all_gather_no_grad, all_gather_with_grad, local_row_offset, world_info
from mmssl.losses import SymmetricInfoNCELoss

WORLD_SIZE = 2
LOCAL_BATCH = 3


class TwoTowers(nn.Module):
    """Two linear towers and the loss (its learnable log logit scale is a parameter too)."""

    def __init__(self, local_loss: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first_tower = nn.Linear(4, 5).double()
        self.second_tower = nn.Linear(4, 5).double()
        self.loss = SymmetricInfoNCELoss(init_temperature=0.5, gather=True, local_loss=local_loss).double()

    def forward(self, first_inputs, second_inputs):
        first, second = self.first_tower(first_inputs), self.second_tower(second_inputs)
        return self.loss(first, second), first, second


def global_batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, WORLD_SIZE * LOCAL_BATCH, 4, generator=generator, dtype=torch.float64)


def worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        first_inputs, second_inputs = (x[rows] for x in global_batch())
        results = {"world": world_info(), "offset": local_row_offset(LOCAL_BATCH)}
        results["gathered"] = all_gather_no_grad(torch.full((2, 1), float(rank)))
        for local_loss in (False, True):
            model = DistributedDataParallel(TwoTowers(local_loss))
            loss, first, second = model(first_inputs, second_inputs)
            first.retain_grad()
            loss.backward()
            results[local_loss] = {
                "loss": loss.detach(),
                "feature_grad": first.grad,
                "param_grads": {name: p.grad for name, p in model.module.named_parameters()},
            }
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_process_global_batch_equals_one_process(tmp_path):
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]
    for local_loss in (False, True):
        single = TwoTowers(local_loss)
        loss, first, _ = single(*global_batch())
        first.retain_grad()
        loss.backward()
        losses = torch.stack([result[local_loss]["loss"] for result in ranks])
        if local_loss:  # each rank holds its local share; their mean is the global loss
            torch.testing.assert_close(losses.mean(), loss.detach(), rtol=1e-6, atol=1e-12)
            assert abs(float(losses[0] - losses[1])) > 1e-3
        else:  # every rank computes the whole global-batch loss
            torch.testing.assert_close(losses, loss.detach().expand(WORLD_SIZE), rtol=1e-6, atol=1e-12)
        for rank, result in enumerate(ranks):
            # DDP averaged the parameter gradients: equal to the one-process gradients.
            for name, param in single.named_parameters():
                torch.testing.assert_close(result[local_loss]["param_grads"][name], param.grad, rtol=1e-6, atol=1e-12)
            # Local features get world_size x the global gradient (the gather sums over ranks).
            rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
            torch.testing.assert_close(
                result[local_loss]["feature_grad"] / WORLD_SIZE, first.grad[rows], rtol=1e-6, atol=1e-12
            )
    assert [result["world"].rank for result in ranks] == [0, 1]
    assert [result["offset"] for result in ranks] == [0, LOCAL_BATCH]
    torch.testing.assert_close(ranks[1]["gathered"], torch.tensor([[0.0], [0.0], [1.0], [1.0]]))


def test_helpers_are_no_ops_on_one_process():
    tensor = torch.randn(3, 2, requires_grad=True)
    assert world_info().world_size == 1 and local_row_offset(3) == 0
    assert all_gather_with_grad(tensor) is tensor
    gathered = all_gather_no_grad(tensor)
    assert not gathered.requires_grad and torch.equal(gathered, tensor.detach())
