"""HDR and 10-bit inputs: kept at their depth with their tags and mastering metadata, refused
at 8 bits, or tone-mapped to SDR by option; 4:4:4 and 4:2:2 kept (real x264/x265 files)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from streamer.frames import HLG, PQ
from streamer.media.hdr import SDR_WHITE_NITS, _nits_to_pq, hdr_metadata, tone_map
from tests.streamer.clips import write_clip
from tests.streamer.commands import run

MASTERING = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
BT2020, RANGE_LIMITED = 9, 1


def pq_code(nits: float) -> int:
    return int(round(float(_nits_to_pq(nits)) * 65535))


def write_hdr10(path: Path, *, frames: int = 6, nits: float = 100.0, transfer: int = PQ) -> None:
    """An HDR10 clip as a grading tool writes it: HEVC Main 10, BT.2020, PQ, with mastering
    display and content light metadata; a grey of ``nits`` with a brighter square."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx265", rate=24, options={
            "preset": "ultrafast",
            "x265-params": f"master-display={MASTERING}:max-cll=1000,400:log-level=error"})
        video.width, video.height, video.pix_fmt = 128, 96, "yuv420p10le"
        context = video.codec_context
        context.color_primaries, context.colorspace = BT2020, BT2020
        context.color_trc, context.color_range = transfer, RANGE_LIMITED
        for i in range(frames):
            image = np.full((96, 128, 3), pq_code(nits), np.uint16)
            image[30:60, 20 + i * 4:50 + i * 4] = pq_code(600)
            frame = av.VideoFrame.from_ndarray(image, format="rgb48le").reformat(
                format="yuv420p10le", dst_colorspace=BT2020, dst_color_range=RANGE_LIMITED)
            frame.color_primaries, frame.colorspace = BT2020, BT2020
            frame.color_trc, frame.color_range = transfer, RANGE_LIMITED
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())


def first_frame(path: Path) -> av.VideoFrame:
    with av.open(str(path)) as container:
        return next(container.decode(video=0))



def test_hdr10_stays_10_bit_hdr_with_its_mastering_metadata(tmp_path: Path) -> None:
    src, dst = tmp_path / "hdr10.mp4", tmp_path / "out.mp4"
    write_hdr10(src)
    assert run(src, "-o", dst) == 0
    with av.open(str(dst)) as out:
        stream = out.streams.video[0]
        assert stream.codec_context.name == "hevc"  # auto: HEVC for HDR
        frames = list(out.decode(video=0))
    assert len(frames) == 6
    frame = frames[0]
    assert frame.format.name == "yuv420p10le"
    assert (frame.color_trc, frame.color_primaries, frame.colorspace) == (PQ, BT2020, BT2020)
    kept, given = hdr_metadata(frame), hdr_metadata(first_frame(src))
    assert kept is not None and kept == given and kept.max_cll == 1000
    assert kept.encoder_params() == f"master-display={MASTERING}:max-cll=1000,400"


def test_an_8_bit_output_of_hdr_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "hdr10.mp4", tmp_path / "out.mp4"
    write_hdr10(src, frames=2)
    assert run(src, "-o", dst, "--pix-fmt", "yuv420p") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "HDR (PQ)" in err[0] and "--tone-map" in err[0]
    assert not dst.exists()
    # an encoder that has no 10-bit format here (this FFmpeg's VP9) is refused the same way
    assert run(src, "-o", tmp_path / "out.webm") == 2
    assert "no 10-bit format" in capsys.readouterr().err


@pytest.mark.parametrize("transfer", [PQ, HLG])
def test_tone_map_writes_sdr_bt709(tmp_path: Path, transfer: int) -> None:
    src, dst = tmp_path / "hdr.mp4", tmp_path / "sdr.mp4"
    write_hdr10(src, frames=3, transfer=transfer)
    assert run(src, "-o", dst, "--tone-map", "--no-stabiliser", "--strength", "0") == 0
    frame = first_frame(dst)
    assert frame.format.name == "yuv420p" and frame.color_trc == 1
    assert frame.color_primaries == 1 and hdr_metadata(frame) is None
    grey = frame.to_ndarray(format="rgb24")[80, 100].astype(int)
    assert np.ptp(grey) <= 3  # a grey stays grey through the BT.2020 -> BT.709 conversion
    assert 120 < grey.mean() < 240  # neither crushed nor blown out


def test_tone_map_curve() -> None:
    levels = [0.05, 1, 10, 50, 100, 203, 600, 1000, 4000]
    codes = np.array([[[pq_code(n)] * 3 for n in levels]], np.uint16)
    sdr = tone_map(codes, PQ, peak_nits=1000)[0, :, 0].astype(int)
    assert np.all(np.diff(sdr) >= 0)  # monotonic
    assert sdr[levels.index(1000)] == 255 and sdr[-1] == 255  # the peak reaches white
    linear = (sdr / 255.0) ** 2.4 * SDR_WHITE_NITS
    assert abs(linear[levels.index(50)] - 50) < 3  # below the knee: display light kept
    assert sdr[levels.index(0.05)] < 20
    hlg = tone_map(np.full((1, 1, 3), int(0.75 * 65535), np.uint16), HLG)
    assert 200 < int(hlg[0, 0, 0]) < 255  # HLG's reference white, near SDR white


@pytest.mark.parametrize(("pix_fmt", "codec"), [("yuv420p10le", "libx264"),
                                                ("yuv444p", "libx264"),
                                                ("yuv422p10le", "libx264")])
def test_depth_and_chroma_of_sdr_inputs_are_kept(tmp_path: Path, pix_fmt: str, codec: str
                                                 ) -> None:
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_clip(src, frames=4, pix_fmt=pix_fmt, codec=codec, audio=False)
    assert run(src, "-o", dst) == 0
    assert first_frame(dst).format.name == pix_fmt


@pytest.mark.parametrize("transfer", [PQ, HLG])
def test_the_sdr_range_mapping_is_exact_both_ways(transfer: int) -> None:
    import torch

    from streamer.engine.signal_range import from_sdr_range, to_sdr_range

    codes = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    base, outside = to_sdr_range(codes, transfer)  # random codes: mostly outside BT.709
    assert float(base.min()) >= 0 and float(base.max()) <= 1
    # float32 through the matrices: within 0.2% of a code (at the darkest PQ codes)
    assert torch.allclose(from_sdr_range(base, outside, transfer), codes, atol=2e-3)


def test_hdr_frames_are_enhanced_as_their_sdr_picture_would_be() -> None:
    """An SDR picture carried into PQ and enhanced as an HDR10 frame comes back (carried back)
    as the SDR picture's enhancement does: the model sees the range it was trained on."""
    from benchmarks.bench_hdr import from_pq, psnr, to_pq
    from streamer.engine import EngineBatch
    from streamer.engine.temporal import TemporalState
    from streamer.enhancer import Enhancer
    from streamer.frames import Layout
    from tests.streamer.clips import moving_square

    picture = moving_square(3, 96, 128)
    enhancer = Enhancer("dehaze", model="dcp", smoothing=False, stabiliser=False)
    sdr = enhancer.enhance(picture)[0]
    batch = EngineBatch([to_pq(picture)], Layout.RGB48, transfers=[PQ])
    hdr = from_pq(enhancer.engine.submit(batch, [TemporalState()]).result()[0])
    naive = from_pq(enhancer.enhance(to_pq(picture))[0])
    assert psnr(hdr, sdr) > 35 and psnr(naive, sdr) < psnr(hdr, sdr) - 10


def test_highlights_above_sdr_white_survive_the_enhancement(tmp_path: Path) -> None:
    """A 600 cd/m² square in a 100 cd/m² grey: the model works below SDR white, and the
    highlight's headroom is added back, so the output is still HDR where the input was."""
    from streamer.media.hdr import _pq_to_nits

    src, dst = tmp_path / "hdr10.mp4", tmp_path / "out.mkv"
    write_hdr10(src, frames=3)
    assert run(src, "-o", dst, "--no-stabiliser") == 0
    with av.open(str(dst)) as out:
        frame = next(out.decode(video=0))
    rgb = frame.reformat(format="rgb48le", src_colorspace=BT2020, src_color_range=1,
                         dst_color_range=2).to_ndarray()
    nits = _pq_to_nits()[rgb].mean(axis=2)
    assert nits[35:55, 25:45].mean() > 400  # the highlight (input 600)
    assert nits[80:90, 100:120].mean() < 203  # the grey stays below SDR white
