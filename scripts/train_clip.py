#!/usr/bin/env python
"""Train the CLIP-style image–text dual encoder (the `models/clip-default` recipe).

    python scripts/train_clip.py                                   # the default recipe
    python scripts/train_clip.py --model.item.name vit-tiny-64 --corpora emoji \
        --output models/clip-vit --train.run-dir runs/clip-vit
    python scripts/train_clip.py --pretrain.steps 150              # pretrain the image tower first: SimCLR on
                                                                   # one concept in two artworks/icon sets
    python scripts/train_clip.py --pretrain.steps 150 --pretrain.multiview false   # plain SimCLR views
    python scripts/train_clip.py --train.resume true               # continue an interrupted run
    torchrun --nproc_per_node 2 scripts/train_clip.py ...          # several processes

Every field of mmssl.recipes.dual_encoder.DualEncoderRun is a flag (see --help) or a key of --config.
The same as `python -m mmssl train clip ...`.
"""

import sys

from mmssl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", "clip", *sys.argv[1:]]))
