"""``python -m streamer.cli``: the ``hdm-stream`` command."""

import sys

from streamer.cli.main import main

sys.exit(main())
