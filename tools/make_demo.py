"""Make the bundled demo clip: a public-domain photo, panned and hazed by the scattering model.

    python tools/make_demo.py PATH/TO/rocket.jpg streamer/demo/hazy_rocket.mp4

The photo is scikit-image's ``rocket.jpg`` (the launch of DSCOVR on a Falcon 9, SpaceX,
released into the public domain). scikit-image is a dev dependency, so the photo is at
``python -c "import skimage, os; print(os.path.dirname(skimage.__file__))"``/data/rocket.jpg.
Each frame is a 16:9 window sliding across the photo, hazed as I = J t + A (1 - t) with a
transmission that falls with height in the frame (the sky is far). A quiet 440 Hz tone is the
audio track, so the demo also shows audio passing through untouched.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 24, 4
AIRLIGHT = np.array([0.86, 0.88, 0.9], dtype=np.float32)
SAMPLE_RATE = 48_000


def hazy_frames(photo: np.ndarray) -> list[np.ndarray]:
    h, w = photo.shape[:2]
    crop_w = int(w * 0.85)
    crop_h = crop_w * 9 // 16
    rows = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    transmission = np.exp(-1.8 * (1.05 - rows))  # 0.15 at the top, 0.9 at the bottom
    frames = []
    for i in range(FPS * SECONDS):
        progress = i / (FPS * SECONDS - 1)
        x0 = progress * (w - crop_w)
        y0 = (h - crop_h) * (0.5 + 0.3 * np.sin(2 * np.pi * progress))
        scale = WIDTH / crop_w
        affine = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float32)
        view = cv2.warpAffine(photo, affine, (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC)
        clean = view.astype(np.float32) / 255.0
        hazy = clean * transmission + AIRLIGHT * (1 - transmission)
        frames.append(np.clip(hazy * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return frames


def write(frames: list[np.ndarray], path: Path) -> None:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"crf": "26", "preset": "slow"}
        video.codec_context.colorspace = 1  # BT.709
        video.codec_context.color_range = 1  # limited (TV) range
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for frame_rgb in frames:
            frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709",
                                   dst_color_range="MPEG")
            container.mux(video.encode(frame))
        container.mux(video.encode())
        t = np.arange(SAMPLE_RATE * SECONDS, dtype=np.float32) / SAMPLE_RATE
        tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        step = 1024
        for start in range(0, len(tone), step):
            chunk = av.AudioFrame.from_ndarray(tone[None, start : start + step], format="fltp",
                                               layout="mono")
            chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
            chunk.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    bgr = cv2.imread(str(args.photo), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {args.photo}")
    write(hazy_frames(np.ascontiguousarray(bgr[..., ::-1])), args.output)


if __name__ == "__main__":
    main()
