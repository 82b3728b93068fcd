#!/usr/bin/env python
"""Pretrain a tower with a unimodal contrastive method (mmssl.contrastive).

    python scripts/pretrain_contrastive.py simclr                          # resnet-tiny-64 on emoji
    python scripts/pretrain_contrastive.py moco --options.queue-size 4096 --options.momentum 0.99
    python scripts/pretrain_contrastive.py deepcluster --options.num-clusters 100 --options.recluster-every 100
    python scripts/pretrain_contrastive.py cmc --modality code --corpora code --encoder.name nbow
    python scripts/pretrain_contrastive.py supervised --options.loss triplet --options.mining hard
    python scripts/pretrain_contrastive.py simclr --train.resume true    # continue an interrupted run

Methods: simclr, moco, deepcluster, interclr, cmc, supervised. Every field of
mmssl.recipes.contrastive.ContrastiveRun is a flag (see --help) or a key of --config. The run folder
initialises a dual-encoder tower: TowerConfig(name=<encoder>, pretrained=<run folder>).
The same as `python -m mmssl contrastive METHOD ...`.
"""

import sys

from mmssl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["contrastive", *sys.argv[1:]]))
