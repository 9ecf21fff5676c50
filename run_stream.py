#!/usr/bin/env python3
"""Enhance a video file, stream or camera: ``python run_stream.py [INPUT] [-o OUT] ...``.

The same as ``hdm-stream run``; with no arguments it enhances the bundled demo clip.
"""

import sys

from streamer.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
