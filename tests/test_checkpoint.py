"""Checkpoint folders: the swap that replaces one is crash-safe (a kill at any step leaves one loadable)."""

import subprocess
import sys
import textwrap

import pytest
import torch

from mmssl.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, write_latest

# Saves step_000001 with weights 1.0, then saves it again with weights 2.0 in a process that dies
# (os._exit, so no cleanup runs) at the os.replace call numbered KILL_AT of the second save:
# call 1 moves the old folder aside, call 2 moves the new one in.
_WRITER = textwrap.dedent("""
    import os, sys
    import torch
    import mmssl.io
    from mmssl.checkpoint import save_checkpoint, write_latest

    checkpoints, kill_at = sys.argv[1], int(sys.argv[2])
    folder = os.path.join(checkpoints, "step_000001")
    save_checkpoint(folder, {"encoder.w": torch.full((2, 3), 1.0)}, None, {"step": 1})
    write_latest(checkpoints, "step_000001")
    calls, real_replace = [0], os.replace

    def dying_replace(src, dst):
        calls[0] += 1
        if calls[0] == kill_at:
            os._exit(9)
        real_replace(src, dst)

    mmssl.io.os.replace = dying_replace
    save_checkpoint(folder, {"encoder.w": torch.full((2, 3), 2.0)}, None, {"step": 1})
""")


@pytest.mark.parametrize("kill_at, weight", [(1, 1.0), (2, 1.0), (3, 2.0)])
def test_a_kill_during_the_checkpoint_swap_leaves_a_loadable_checkpoint(tmp_path, kill_at, weight):
    proc = subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path), str(kill_at)], capture_output=True, text=True)
    assert proc.returncode == (9 if kill_at < 3 else 0), proc.stderr
    if kill_at == 2:  # killed between the two renames: the folder itself is gone until a reader recovers it
        assert not (tmp_path / "step_000001").exists()
    folder = latest_checkpoint(tmp_path)
    assert folder == tmp_path / "step_000001"
    model_state, optimizer_state, state = load_checkpoint(folder)
    torch.testing.assert_close(model_state["encoder.w"], torch.full((2, 3), weight))
    assert optimizer_state is None and state["step"] == 1


def test_save_checkpoint_round_trips_optimizer_state(tmp_path):
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1)
    layer(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    folder = save_checkpoint(tmp_path / "step_000002", layer.state_dict(), optimizer.state_dict(), {"step": 2})
    write_latest(tmp_path, folder.name)
    model_state, optimizer_state, state = load_checkpoint(latest_checkpoint(tmp_path))
    torch.testing.assert_close(model_state["weight"], layer.weight.detach())
    torch.testing.assert_close(optimizer_state["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert optimizer_state["param_groups"][0]["lr"] == 0.1 and state["step"] == 2
