"""``hdm-stream subscribe ENDPOINT``: receive what ``run --publish`` sends, print a line per
frame, and optionally save the frames as PNG (I420 payloads converted by their header's
colours)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from streamer.cli.common import make_folder
from streamer.media.convert import i420_to_rgb
from streamer.publish.publisher import MODES
from streamer.publish.subscriber import Subscriber
from streamer.publish.wire import to_uint8

__all__ = ["add_parser", "subscribe"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("subscribe", help="receive frames published by 'run --publish'")
    p.add_argument("endpoint", help="e.g. tcp://127.0.0.1:5555")
    p.add_argument("--topic", default="", help="stream id to receive (default: all)")
    p.add_argument("--mode", choices=MODES, default="pub")
    p.add_argument("--count", type=int, help="stop after this many frames")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="give up after this many seconds without a message")
    p.add_argument("--save", type=Path, help="folder to save frames to as PNG")
    p.add_argument("--curve-server-key", metavar="FILE",
                   help="CURVE: the publisher's public key file")
    p.add_argument("--curve-secret", metavar="FILE", help="CURVE: this client's key pair")


def subscribe(args: argparse.Namespace) -> int:
    if args.save:
        make_folder(args.save)
    with Subscriber(args.endpoint, topic=args.topic, mode=args.mode,
                    curve_server_key=args.curve_server_key,
                    curve_secret=args.curve_secret) as subscriber:
        while args.count is None or subscriber.received < args.count:
            message = subscriber.recv(args.timeout)
            if message is None:
                print(f"no message for {args.timeout:g} s; stopping", file=sys.stderr)
                return 1
            if message.end:
                print(f"end of {message.topic}: {message.header}")
                break
            h = message.header
            captured = h.get("capture_time")
            latency = (f" latency={(time.time() - captured) * 1000:.1f}ms"
                       if isinstance(captured, int | float) else "")
            print(f"{message.topic} seq={h['seq']} pts={h.get('pts')} {h['width']}x{h['height']} "
                  f"{h['format']}{latency}")
            if args.save and message.image is not None:
                image = (i420_to_rgb(message.image, message.color_tags) if h["format"] == "i420"
                         else to_uint8(message.image))
                cv2.imwrite(str(args.save / f"{message.topic}_{h['seq']:06d}.png"),
                            np.ascontiguousarray(image[..., ::-1]))
        print(f"received {subscriber.received}, missed {subscriber.missed}, malformed "
              f"{subscriber.malformed}", file=sys.stderr)
    return 0
