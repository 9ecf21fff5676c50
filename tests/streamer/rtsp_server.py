"""A small real RTSP camera for the tests: ``rtsp://127.0.0.1:PORT/cam``, on a free port.

Debian's ffmpeg serves no RTSP (``-rtsp_flags listen`` only receives), so the parts are split:
the ffmpeg tool packetizes a clip as a camera would send it (``-f rtp``, each stream to its
own UDP port on 127.0.0.1, RTCP sender reports included, in real time with ``-re``) and writes
the SDP; :func:`record` keeps those packets with the time each arrived. :class:`RtspCamera`
then answers FFmpeg's RTSP client as a camera does (OPTIONS, DESCRIBE with that SDP, SETUP,
PLAY, GET_PARAMETER keep-alives, TEARDOWN) and plays the recording to every client over the
RTSP connection itself (RTP over TCP, interleaved), at the pace it was recorded. A SETUP that
asks for UDP is answered 461, as cameras behind a NAT answer: FFmpeg then asks again for TCP
by itself, so a user needs no ``rtsp_transport`` option. ``vanish_after_s`` makes the camera
drop each client's connection that long into its stream (a camera rebooting, a cable pulled);
:meth:`RtspCamera.close` takes it off the network.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import av

from tests.streamer.camera_clips import FFMPEG

__all__ = ["Recording", "RtspCamera", "record"]


@dataclass(frozen=True)
class Packet:
    at_s: float  # since the first packet
    track: int  # the SDP's media section
    rtcp: bool
    data: bytes


@dataclass(frozen=True)
class Recording:
    """What a camera sends for one clip: the SDP (a control URL per track) and its packets."""

    sdp: str
    packets: tuple[Packet, ...]

    @property
    def tracks(self) -> int:
        return self.sdp.count("\nm=")


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)  # nothing lost on the way
    sock.bind(("127.0.0.1", 0))
    return sock


def _served_sdp(sdp: str) -> str:
    """ffmpeg's SDP as a DESCRIBE answers it: no UDP port of ours (port 0), and a control URL
    for each track, which its SETUP names."""
    out, track = [], 0
    for line in sdp.replace("\r\n", "\n").strip().split("\n"):
        if line.startswith("m="):
            if track:
                out.append(f"a=control:trackID={track - 1}")
            line = re.sub(r"^(m=\w+) \d+", r"\1 0", line)
            track += 1
        out.append(line)
    out.append(f"a=control:trackID={track - 1}")
    return "\r\n".join(out) + "\r\n"


def record(clip: Path, folder: Path) -> Recording:
    """Send ``clip``'s video and audio as RTP in real time (the ffmpeg tool) and keep what
    arrives."""
    assert FFMPEG is not None
    with av.open(str(clip)) as container:  # video first, then audio, as cameras send
        streams = sorted((s.type != "video", s.index) for s in container.streams
                         if s.type in ("video", "audio"))
    sockets = [_udp() for _ in range(2 * len(streams))]  # RTP, RTCP per track
    try:
        outputs: list[str] = []
        for track, (_, index) in enumerate(streams):
            rtp, rtcp = (s.getsockname()[1] for s in sockets[2 * track: 2 * track + 2])
            outputs += ["-map", f"0:{index}", "-c", "copy", "-f", "rtp",
                        f"rtp://127.0.0.1:{rtp}?rtcpport={rtcp}&pkt_size=1200"]
        sdp_path = folder / f"{clip.stem}.sdp"
        sender = subprocess.Popen([FFMPEG, "-v", "error", "-y", "-re", "-i", str(clip),
                                   *outputs, "-sdp_file", str(sdp_path)],
                                  stdin=subprocess.DEVNULL)
        packets: list[Packet] = []
        first: float | None = None
        while True:
            ready, _, _ = select.select(sockets, [], [], 0.2)
            if not ready and sender.poll() is not None:
                break
            for sock in ready:
                data = sock.recv(65536)
                now = time.monotonic()
                first = now if first is None else first
                index = sockets.index(sock)
                packets.append(Packet(now - first, index // 2, bool(index % 2), data))
        if sender.returncode != 0:
            raise RuntimeError(f"ffmpeg could not send {clip} as RTP")
        return Recording(_served_sdp(sdp_path.read_text()), tuple(packets))
    finally:
        for sock in sockets:
            sock.close()


class _Client:
    """One RTSP connection: its requests answered in order, then the recording played over
    it on PLAY (interleaved channels as its SETUPs asked)."""

    def __init__(self, camera: RtspCamera, conn: socket.socket) -> None:
        self.camera, self.conn = camera, conn
        self.channels: dict[int, int] = {}  # track -> interleaved RTP channel
        self.lock = threading.Lock()  # answers and packets share the connection
        self.session = f"{id(self) & 0xFFFFFFFF:08X}"

    def serve(self) -> None:
        buffer = b""
        try:
            while True:
                while buffer.startswith(b"$"):  # the client's RTCP receiver reports
                    if len(buffer) < 4:
                        break
                    size = struct.unpack(">H", buffer[2:4])[0]
                    if len(buffer) < 4 + size:
                        break
                    buffer = buffer[4 + size:]
                head, found, rest = buffer.partition(b"\r\n\r\n")
                if not found or buffer.startswith(b"$"):
                    chunk = self.conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:])}
                size = int(headers.get("content-length", "0"))
                if len(rest) < size:
                    buffer += self.conn.recv(65536)
                    continue
                buffer = rest[size:]
                method, url, _ = lines[0].split(" ", 2)
                if not self._answer(method, url, headers):
                    return
        except OSError:  # the client went away, or the camera did
            return
        finally:
            self.conn.close()

    def _reply(self, headers: dict[str, str], status: str = "200 OK", extra: str = "",
               body: str = "") -> None:
        text = f"RTSP/1.0 {status}\r\nCSeq: {headers.get('cseq', '0')}\r\n{extra}"
        if body:
            text += f"Content-Length: {len(body.encode())}\r\n"
        with self.lock:
            self.conn.sendall((text + "\r\n" + body).encode())

    def _answer(self, method: str, url: str, headers: dict[str, str]) -> bool:
        """Answer one request; False once the client has said goodbye."""
        session = f"Session: {self.session};timeout=60\r\n"
        if method == "OPTIONS":
            self._reply(headers, extra="Public: OPTIONS, DESCRIBE, SETUP, PLAY, "
                        "GET_PARAMETER, TEARDOWN\r\n")
        elif method == "DESCRIBE":
            base = url.rstrip("/") + "/"
            self._reply(headers, extra=f"Content-Base: {base}\r\nContent-Type: "
                        "application/sdp\r\n", body=self.camera.recording.sdp)
        elif method == "SETUP":
            asked = re.search(r"interleaved=(\d+)", headers.get("transport", ""))
            track = re.search(r"trackID=(\d+)", url)
            if asked is None or track is None:
                self._reply(headers, "461 Unsupported Transport")
                return True
            channel = int(asked[1])
            self.channels[int(track[1])] = channel
            self._reply(headers, extra=f"Transport: RTP/AVP/TCP;unicast;interleaved="
                        f"{channel}-{channel + 1}\r\n{session}")
        elif method == "PLAY":
            self._reply(headers, extra=f"{session}Range: npt=0.000-\r\n")
            threading.Thread(target=self._play, daemon=True).start()
        elif method == "TEARDOWN":
            self._reply(headers, extra=session)
            return False
        else:  # GET_PARAMETER (a keep-alive), SET_PARAMETER
            self._reply(headers, extra=session)
        return True

    def _play(self) -> None:
        started = time.monotonic()
        vanish = self.camera.vanish_after_s
        try:
            for packet in self.camera.recording.packets:
                wait = started + packet.at_s - time.monotonic()
                if vanish is not None and packet.at_s >= vanish:
                    self.conn.shutdown(socket.SHUT_RDWR)  # gone: the client reads the end
                    return
                if wait > 0:
                    time.sleep(wait)
                channel = self.channels.get(packet.track)
                if channel is None:
                    continue  # a track the client did not set up
                frame = struct.pack(">cBH", b"$", channel + packet.rtcp, len(packet.data))
                with self.lock:
                    self.conn.sendall(frame + packet.data)
        except OSError:
            return


class RtspCamera:
    """``rtsp://127.0.0.1:PORT/cam`` serving ``recording`` to each client from its start."""

    def __init__(self, recording: Recording, *, vanish_after_s: float | None = None) -> None:
        self.recording = recording
        self.vanish_after_s = vanish_after_s
        self.clients = 0  # connections accepted (a reconnect is one more)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rtsp://127.0.0.1:{self._listener.getsockname()[1]}/cam"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.clients += 1
            threading.Thread(target=_Client(self, conn).serve, daemon=True).start()

    def close(self) -> None:
        """Off the network: no new connection is accepted (those open end with their
        streams)."""
        with contextlib.suppress(OSError):  # already closed
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self._listener.close()

    def __enter__(self) -> RtspCamera:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
