#!/usr/bin/env python
"""Train the CodeSearchNet-style text–code dual encoder (the `models/code-default` recipe).

    python scripts/train_code.py                                   # the default recipe
    python scripts/train_code.py --model.item.name self-attention --train.max-steps 3000 \
        --output models/code-attn --train.run-dir runs/code-attn
    python scripts/train_code.py --train.resume true               # continue an interrupted run
    torchrun --nproc_per_node 2 scripts/train_code.py ...          # several processes

Every field of mmssl.recipes.dual_encoder.DualEncoderRun is a flag (see --help) or a key of --config.
The same as `python -m mmssl train code ...`.
"""

import sys

from mmssl.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", "code", *sys.argv[1:]]))
