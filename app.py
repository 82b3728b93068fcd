"""Start the mmssl search app: ``python app.py [--port 7860 --index NAME ...]``, the same as
``python -m mmssl serve`` (see ``--help``). All behaviour lives in :mod:`mmssl.app`."""

import sys

from mmssl.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
