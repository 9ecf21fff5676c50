"""The subscriber against what other programs may send: malformed messages of every kind, a
JPEG that claims a huge size, a publisher that goes silent, an end message behind a full queue,
a late joiner."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq

from streamer.frames import ColorTags, Frame, Layout
from streamer.publish.publisher import Publisher, PublishSettings
from streamer.publish.subscriber import Subscriber
from streamer.publish.wire import Message, jpeg_size


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def header(**fields: object) -> bytes:
    base: dict[str, object] = {"v": 1, "seq": 0, "pts": None, "time_base": None, "width": 4,
                               "height": 2, "format": "rgb24", "color": {}}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def small_jpeg(width: int = 16, height: int = 8) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def claiming(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its frame header rewritten to claim another size."""
    at = data.index(b"\xff\xc0")
    patched = bytearray(data)
    patched[at + 5 : at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(patched)


PIXELS = bytes(4 * 2 * 3)
BOMB = claiming(small_jpeg(), 30000, 30000)
MALFORMED = {
    "one part": [b"cam"],
    "four parts": [b"cam", header(), PIXELS, b"x"],
    "header not JSON": [b"cam", b"{not json", PIXELS],
    "header not UTF-8": [b"cam", b"\xff\xfe", PIXELS],
    "header a list": [b"cam", b"[1, 2]", PIXELS],
    "unknown version": [b"cam", header(v=99), PIXELS],
    "no seq": [b"cam", header(seq=...), PIXELS],
    "width a string": [b"cam", header(width="4"), PIXELS],
    "negative size": [b"cam", header(width=-4), PIXELS],
    "huge size": [b"cam", header(width=10**9, height=10**9), PIXELS],
    "payload short": [b"cam", header(), PIXELS[:-1]],
    "payload long": [b"cam", header(), PIXELS + b"\0"],
    "unknown format": [b"cam", header(format="yuv"), PIXELS],
    "topic not UTF-8": [b"\xff\xfe", header(), PIXELS],
    "bad JPEG": [b"cam", header(format="jpeg", width=16, height=8), b"\xff\xd8garbage"],
    "JPEG bomb": [b"cam", header(format="jpeg", width=16, height=8), BOMB],
    "JPEG bomb, honest header": [b"cam", header(format="jpeg", width=30000, height=30000), BOMB],
}


def test_the_jpeg_size_is_read_from_its_header_without_decoding() -> None:
    assert jpeg_size(small_jpeg(16, 8)) == (16, 8)
    assert jpeg_size(BOMB) == (30000, 30000)
    assert jpeg_size(b"not a jpeg") is None


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_each_kind_of_malformed_message_is_refused_fast(kind: str) -> None:
    from streamer.errors import MessageError

    started = time.perf_counter()
    with pytest.raises(MessageError):
        Message.parse(MALFORMED[kind])
    assert time.perf_counter() - started < 0.1  # nothing allocated for a claimed size


def test_a_subscriber_counts_malformed_messages_and_goes_on() -> None:
    endpoint = free_endpoint()
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pub = context.socket(zmq.PUB)
    pub.bind(endpoint)
    try:
        with Subscriber(endpoint, hwm=100) as sub:
            time.sleep(0.3)  # let the subscription reach the publisher
            for parts in MALFORMED.values():
                pub.send_multipart(parts)
            pub.send_multipart([b"cam", header(seq=3), PIXELS])
            pub.send_multipart([b"cam", json.dumps({"v": 1, "end": True}).encode(), b""])
            got = list(sub)
        assert [m.header["seq"] for m in got] == [3]
        assert sub.malformed == len(MALFORMED) and not sub.gone
        assert sub.missed == 3  # seq 0..2 never came: it joined late, and knows it
    finally:
        pub.close(linger=0)


def test_frames_lost_after_the_last_one_received_count_as_missed() -> None:
    """A lossy link: of 120 frames announced by the end message, 3 in the middle and the last
    3 never arrive. Counting from the highest seq received said 3; the end message says 6."""
    endpoint = free_endpoint()
    pub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    lost = {40, 41, 42, 117, 118, 119}
    try:
        with Subscriber(endpoint, hwm=1000) as sub:
            time.sleep(0.3)  # let the subscription reach the publisher
            for seq in range(120):
                if seq not in lost:
                    pub.send_multipart([b"cam", header(seq=seq), PIXELS])
            pub.send_multipart([b"cam", json.dumps({"v": 1, "end": True, "frames": 120}).encode(),
                                b""])
            got = list(sub)
        assert len(got) == 114 and not sub.gone
        assert sub.missed == 6
    finally:
        pub.close(linger=0)


def test_a_heartbeat_tells_a_subscriber_what_it_missed_before_the_end() -> None:
    endpoint = free_endpoint()
    pub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    try:
        with Subscriber(endpoint, hwm=1000) as sub:
            time.sleep(0.3)
            pub.send_multipart([b"cam", header(seq=0), PIXELS])
            assert sub.recv(2.0) is not None
            beat = {"v": 1, "heartbeat": True, "seq": 9, "frames": 10}
            pub.send_multipart([b"cam", json.dumps(beat).encode(), b""])
            assert sub.recv(0.5) is None  # heartbeats are consumed
        assert sub.missed == 9
    finally:
        pub.close(linger=0)


def frame(seq: int, image: np.ndarray) -> Frame:
    return Frame(image, Layout.RGB24, seq, None, seq, time.monotonic(), ColorTags(), "cam")


@pytest.mark.slow
def test_a_silent_publisher_is_noticed_and_heartbeats_keep_a_quiet_one_alive() -> None:
    endpoint = free_endpoint()
    stop = threading.Event()
    publisher = Publisher.bind(PublishSettings(endpoint, heartbeat_s=0.2), stop)
    image = np.zeros((8, 8, 3), np.uint8)
    try:
        with Subscriber(endpoint, silence_s=1.0) as sub:
            time.sleep(0.3)
            publisher.send(frame(0, image))
            assert sub.recv(2.0) is not None
            quiet_until = time.monotonic() + 2.5  # quiet, but alive: heartbeats every 0.2 s
            while time.monotonic() < quiet_until:
                publisher.heartbeat("cam")
                time.sleep(0.05)
            publisher.send(frame(1, image))
            assert [m.header["seq"] for m in _take(sub, 1)] == [1]
            assert not sub.gone
            started = time.monotonic()
            assert list(sub) == []  # nothing more, not even heartbeats: it has gone
            assert sub.gone and 0.9 < time.monotonic() - started < 3
    finally:
        publisher.socket.close(linger=0)


def _take(sub: Subscriber, count: int) -> list[Message]:
    taken = []
    for message in sub:
        taken.append(message)
        if len(taken) == count:
            break
    return taken


@pytest.mark.slow
def test_the_end_message_reaches_a_slow_subscriber_behind_a_full_queue() -> None:
    endpoint = free_endpoint()
    stop = threading.Event()
    publisher = Publisher.bind(PublishSettings(endpoint, hwm=2, end_grace_s=2.0), stop)
    image = np.zeros((240, 320, 3), np.uint8)
    with Subscriber(endpoint, hwm=2, silence_s=5.0) as sub:
        time.sleep(0.3)

        def send_then_close() -> None:
            for i in range(50):
                publisher.send(frame(i, image))
            publisher.close("cam")

        closer = threading.Thread(target=send_then_close)
        closer.start()
        time.sleep(0.5)  # the subscriber's queue is full and the end message was dropped once
        seen = []
        for message in sub:
            seen.append(message.header["seq"])
            time.sleep(0.1)  # slow
        closer.join(timeout=10)
    assert not sub.gone, "the loop ended by silence, not by the end message"
    assert seen and seen[-1] == 49 or sub.missed > 0


@pytest.mark.parametrize("client", ["allowed", "stranger", "no key"])
def test_curve_lets_only_allowed_clients_read(tmp_path: Path, client: str) -> None:
    import zmq.auth

    for name, folder in (("server", tmp_path), ("allowed", tmp_path / "clients"),
                         ("stranger", tmp_path / "others")):
        folder.mkdir(exist_ok=True)
        zmq.auth.create_certificates(folder, name)
    # The clients folder must hold only public keys: move the allowed client's secret away.
    (tmp_path / "clients" / "allowed.key_secret").rename(tmp_path / "allowed.key_secret")
    endpoint = free_endpoint()
    settings = PublishSettings(endpoint, curve_secret=str(tmp_path / "server.key_secret"),
                               curve_clients=str(tmp_path / "clients"), heartbeat_s=0)
    publisher = Publisher.bind(settings, threading.Event())
    secret = {"allowed": tmp_path / "allowed.key_secret",
              "stranger": tmp_path / "others" / "stranger.key_secret"}.get(client)
    kwargs = {} if client == "no key" else {
        "curve_server_key": str(tmp_path / "server.key"), "curve_secret": str(secret)}
    image = np.zeros((8, 8, 3), np.uint8)
    try:
        with Subscriber(endpoint, **kwargs) as sub:  # type: ignore[arg-type]
            deadline = time.monotonic() + 1.5
            got = None
            while got is None and time.monotonic() < deadline:
                publisher.send(frame(0, image))
                got = sub.recv(0.1)
        assert (got is not None) == (client == "allowed")
    finally:
        publisher.socket.close(linger=0)
