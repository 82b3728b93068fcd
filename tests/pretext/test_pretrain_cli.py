"""`python -m mmssl pretrain METHOD` end to end on a tiny real emoji corpus."""

import json

from mmssl.cli import main


def test_pretrain_cli_writes_a_run_whose_encoder_loads(tmp_path, monkeypatch, capsys):
    from mmssl.data import emoji

    emoji.fetch()
    emoji.build(tmp_path / "data" / "corpora" / "emoji", limit=12)
    monkeypatch.setenv("MMSSL_DATA_DIR", str(tmp_path / "data"))
    run_dir = tmp_path / "run"
    code = main(["pretrain", "vqvae", "--encoder.width", "16", "--encoder.layers", "1", "--vqvae.num-codes", "16",
                 "--vqvae.prior-width", "16", "--vqvae.prior-layers", "1", "--samples", "4",
                 "--train.max-steps", "3", "--train.batch-size", "4", "--train.checkpoint-every", "3",
                 "--train.progress", "false", "--train.run-dir", str(run_dir)])
    assert code == 0
    out = capsys.readouterr().out
    assert "samples/s" in out and "pretrained encoder in" in out
    assert (run_dir / "samples.png").exists() and (run_dir / "curves.png").exists()
    assert json.loads((run_dir / "run.json").read_text())["method"] == "vqvae"
    from mmssl.encoders import build_tower

    tower = build_tower("vq-encoder-32", width=16, layers=1, pretrained=str(run_dir))
    assert tower.output_dim == 16
    assert main(["pretrain", "vqvae", "--method", "mae", "--train.run-dir", str(tmp_path / "x")]) == 1
