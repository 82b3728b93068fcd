#!/usr/bin/env python
"""Pretrain a tower with a self-prediction pretext task (mmssl.pretext).

    python scripts/pretrain.py rotation                                  # RotNet on emoji, resnet-tiny-64
    python scripts/pretrain.py mae --train.max-steps 2000 --corpora emoji,clipart
    python scripts/pretrain.py mlm --text captions --corpora emoji       # BERT on emoji captions
    python scripts/pretrain.py vqvae --vqvae.num-codes 256               # VQ-VAE + prior, samples.png
    python scripts/pretrain.py causal-lm --train.resume true             # continue an interrupted run

Methods: causal-lm, wavenet, bilm, pixelcnn, mlm, mae, rotation, jigsaw, vqvae, vqgan
(`--help` after a method lists every field of mmssl.recipes.pretext.PretextRun). The run folder's
checkpoints initialise a dual-encoder tower: --model.item.pretrained runs/pretext-rotation.
The same as `python -m mmssl pretrain METHOD ...`; prints samples/s at the end.
"""

import sys

from mmssl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["pretrain", *sys.argv[1:]]))
