"""Segmented jobs on real files: every frame, pts and audio packet kept through 2 workers and
Ray; B-frames and variable frame rate; SIGKILL then --resume; the manifest's refusals; no seam
from the temporal filters at the joins."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamer.config import RunConfig
from streamer.engine import Engine, EngineSettings, engine_for_settings
from streamer.engine.scene import SceneEngine
from streamer.jobs.job import _pin_inference_size, job_folder
from streamer.jobs.manifest import Manifest
from streamer.jobs.segments import SegmentResult, plan_segments
from streamer.sources.video import VideoSource
from tests.streamer.clips import audio_packets, decoded_pts, write_clip
from tests.streamer.commands import run

FOG = Path(__file__).resolve().parents[2] / "../shared/data/dehaze/video_fog/fog_city.mp4"
X5 = hashlib.sha256(b"x" * 5).hexdigest()



def vfr_clip(path: Path, frames: int) -> list[int]:
    """Variable frame rate (steps of 1 and 2 ticks of 1/48 s), B-frames, a keyframe every
    12 frames."""
    pts = list(np.cumsum([0] + [1 + (i % 3 == 0) for i in range(frames - 1)]))
    return write_clip(path, frames=frames, pts=[int(p) for p in pts],
                      time_base=Fraction(1, 48), options={"g": "12", "bf": "3"})


def test_the_plan_cuts_at_keyframes_and_holds_every_frame_once(tmp_path: Path) -> None:
    src = tmp_path / "vfr.mp4"
    vfr_clip(src, 96)
    plan = plan_segments(str(src), 0.5, preroll=5, postroll=3)
    with av.open(str(src)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
        keyframes = {p.pts for p in packets if p.is_keyframe}
        every = sorted(p.pts for p in packets if p.pts is not None)
    assert len(every) == len(packets), "a video packet without pts"
    assert plan.frames == sum(s.frames for s in plan.segments) == 96 and len(plan.segments) > 3
    for before, after in zip(plan.segments, plan.segments[1:], strict=False):
        assert after.start is not None and after.decode_from is not None  # inner boundaries
        assert after.start == before.end and after.start in keyframes
        assert after.decode_from in keyframes and after.decode_from < after.start
        assert every.index(after.start) - every.index(after.decode_from) >= 5  # the pre-roll
        assert before.decode_to == every[every.index(before.end) + 3]  # the post-roll


def test_b_frames_and_variable_frame_rate_keep_every_pts(tmp_path: Path) -> None:
    src, dst = tmp_path / "vfr.mp4", tmp_path / "out.mp4"
    written = vfr_clip(src, 96)
    assert run(src, "-o", dst, "--segment-seconds", "0.5", "--preroll", "5") == 0
    assert decoded_pts(dst) == decoded_pts(src) == written
    assert not job_folder(dst).exists()  # cleaned up after the join


def test_a_40_s_file_with_audio_in_segments_by_2_workers_is_the_input_frame_for_frame(
    tmp_path: Path
) -> None:
    src, dst = tmp_path / "long.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=960, fps=24, options={"g": "48"})  # 40 s, AAC
    assert run(src, "-o", dst, "--segment-seconds", "8", "--workers", "2") == 0
    assert decoded_pts(dst) == decoded_pts(src)
    assert audio_packets(dst) == audio_packets(src)
    with av.open(str(dst)) as out:
        assert [s.type for s in out.streams] == ["video", "audio"]


def test_side_by_side_in_segments(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=48, options={"g": "12"})
    assert run(src, "-o", dst, "--segment-seconds", "0.5", "--side-by-side") == 0
    assert decoded_pts(dst) == decoded_pts(src)
    with av.open(str(dst)) as out:
        assert out.streams.video[0].codec_context.width == 256


def test_ray_local_runs_the_segments(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mkv"
    write_clip(src, frames=96, fps=24, options={"g": "24"})
    assert run(src, "-o", dst, "--segment-seconds", "1", "--workers", "2",
               "--ray", "local") == 0
    assert len(decoded_pts(dst)) == 96
    assert audio_packets(dst) == audio_packets(src)


def _command(src: Path, dst: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "streamer.cli", "run", str(src), "-o", str(dst),
            "--model", "dcp", "--quiet", "--segment-seconds", "1", *flags]


def test_sigkill_mid_job_then_resume_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    write_clip(src, frames=240, fps=24, size=(144, 256), options={"g": "24"})
    whole, resumed = tmp_path / "whole.mp4", tmp_path / "resumed.mp4"
    subprocess.run(_command(src, whole), check=True, capture_output=True)
    child = subprocess.Popen(_command(src, resumed), stderr=subprocess.DEVNULL)
    manifest = job_folder(resumed) / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if manifest.is_file() and len(json.loads(manifest.read_text())["finished"]) >= 3:
            break
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done = len(json.loads(manifest.read_text())["finished"])
    assert 3 <= done < 10 and not resumed.exists()
    again = subprocess.run(_command(src, resumed, "--resume"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"resuming: {done} segments already done" in again.stderr
    assert decoded_pts(resumed) == decoded_pts(src)
    assert audio_packets(resumed) == audio_packets(src)
    with av.open(str(whole)) as a, av.open(str(resumed)) as b:
        for x, y in zip(a.decode(video=0), b.decode(video=0), strict=True):
            assert np.array_equal(x.to_ndarray(), y.to_ndarray())


def test_resume_starts_over_for_another_input_or_other_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "out.mp4.hdm-job"
    given = {"size": 10, "ends_sha256": "a", "video_index_sha256": "b"}
    job = Manifest.start(folder, given, "settings-1", resume=False)
    (folder / "segment00000.mp4").write_bytes(b"x" * 5)
    job.record(SegmentResult(0, "segment00000.mp4", 24, 5, 1.0, X5))
    caplog.set_level(logging.INFO)
    assert Manifest.start(folder, given, "settings-1", resume=True).finished.keys() == {0}
    assert "resuming: 1 segments already done" in caplog.text
    assert not Manifest.start(folder, given, "settings-2", resume=True).finished
    assert "starting over: the settings differ" in caplog.text
    job = Manifest.start(folder, given, "settings-1", resume=False)
    (folder / "segment00000.mp4").write_bytes(b"x" * 5)
    job.record(SegmentResult(0, "segment00000.mp4", 24, 5, 1.0, X5))
    other = {**given, "size": 11}
    assert not Manifest.start(folder, other, "settings-1", resume=True).finished
    assert "the input is not the one the job was started on (its size)" in caplog.text
    (folder / "segment00000.mp4").write_bytes(b"cut")  # a damaged segment is redone
    Manifest.start(folder, other, "settings-1", resume=False).record(
        SegmentResult(0, "segment00000.mp4", 24, 5, 1.0, X5))
    assert not Manifest.start(folder, other, "settings-1", resume=True).finished


def test_a_folder_of_the_job_s_name_that_is_not_ours_is_never_emptied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=24, audio=False, options={"g": "12"})
    folder = job_folder(dst)
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's own")
    for flags in ([], ["--resume"]):
        assert run(src, "-o", dst, "--segment-seconds", "0.5", *flags) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(err) == 1 and "not a job folder" in err[0], err
        assert (folder / "notes.txt").read_text() == "the user's own" and not dst.exists()
    (folder / "notes.txt").unlink()  # an empty folder of that name is used
    assert run(src, "-o", dst, "--segment-seconds", "0.5") == 0
    assert dst.is_file() and not folder.exists()


@pytest.mark.parametrize("flags", [["-o", "udp://127.0.0.1:9"], ["--max-frames", "5"],
                                   ["--ray", "127.0.0.1:9"],
                                   ["--ray", "nonsense"], ["--workers", "0"]])
def test_what_segments_cannot_do_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    src = tmp_path / "in.mp4"
    write_clip(src, frames=4, audio=False)
    output = [] if "-o" in flags else ["-o", str(tmp_path / "out.mp4")]
    assert run(src, *output, *flags, "--segment-seconds", "1") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and ("segments" in err[0] or "--ray" in err[0] or "Ray" in err[0]
                              or "--workers" in err[0]), err
    assert not job_folder(tmp_path / "out.mp4").exists()


def test_what_the_output_cannot_hold_is_refused_before_any_segment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.webm"
    write_clip(src, frames=48, options={"g": "12"})  # AAC audio
    assert run(src, "-o", dst, "--segment-seconds", "0.5") == 2
    err = capsys.readouterr().err
    assert "cannot hold the input's audio aac" in err and "segment 0 done" not in err
    assert not dst.exists() and not job_folder(dst).exists()


def fog_clip(path: Path, frames: int, size: tuple[int, int] = (320, 180)) -> Path:
    """The first frames of the shared fog footage at ``size``, a keyframe every second (the
    test skips where ../shared/data is absent)."""
    if not FOG.is_file():
        pytest.skip(f"needs {FOG} (../shared/data)")
    with av.open(str(FOG)) as given, av.open(str(path), "w") as clip:
        video = clip.add_stream("libx264", rate=24, options={"g": "24"})
        (video.width, video.height), video.pix_fmt = size, "yuv420p"
        for index, frame in enumerate(given.decode(video=0)):
            if index == frames:
                break
            small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            small.pts, small.time_base = index, Fraction(1, 24)
            clip.mux(video.encode(small))
        clip.mux(video.encode())
    return path


@pytest.mark.parametrize(("inference", "limit"), [("full", 0.5), ("auto", 1.0)])
def test_no_seam_from_the_temporal_filters_at_the_joins(tmp_path: Path, inference: str,
                                                        limit: float) -> None:
    """Lossless encodes, so only the enhancement differs: a frame-to-frame step at a join of
    the segmented output exceeds the plain run's step there by under 0.5 grey levels at full
    resolution (the smoother's hysteresis keeps a trace of where it started; without a
    pre-roll: 4.5). At a reduced inference size the stabiliser sees less noise, holds static
    pixels longer and so forgets the pre-roll's start more slowly: 0.50 measured."""
    src = fog_clip(tmp_path / "fog.mp4", 144)
    plain, segmented = tmp_path / "plain.mkv", tmp_path / "segmented.mkv"
    size = ("--inference-size", inference)
    assert run(src, "-o", plain, "--crf", "0", *size) == 0
    assert run(src, "-o", segmented, "--crf", "0", "--segment-seconds", "1.5", *size) == 0
    plan = plan_segments(str(src), 1.5)
    joins = list(np.cumsum([s.frames for s in plan.segments])[:-1])

    def steps(path: Path) -> np.ndarray:
        with av.open(str(path)) as container:
            grey = [f.to_ndarray(format="gray").astype(np.float32)
                    for f in container.decode(video=0)]
        return np.array([np.abs(grey[i + 1] - grey[i]).mean() for i in range(len(grey) - 1)])

    at = [j - 1 for j in joins]
    extra = steps(segmented)[at] - steps(plain)[at]
    # measured: at most 0.26 with the pre-roll, 4.4-4.8 with --preroll 0 (a visible seam)
    assert len(joins) >= 3 and float(extra.max()) < limit, extra


def test_devices_are_dealt_to_the_workers_round_robin() -> None:
    from streamer.config import RunConfig
    from streamer.jobs.workers import worker_configs

    configs = worker_configs(RunConfig(), 3, ("cpu", "cuda:1"))
    assert [c.model.device for c in configs] == ["cpu", "cuda:1", "cpu"]
    assert [c.model.device for c in worker_configs(RunConfig(), 2, ())] == ["auto", "auto"]


def test_sigterm_stops_the_workers_and_says_how_to_resume(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=480, fps=24, size=(144, 256), options={"g": "24"})
    child = subprocess.Popen(_command(src, dst, "--workers", "2"), stderr=subprocess.PIPE,
                             text=True)
    manifest = job_folder(dst) / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
            manifest.is_file() and json.loads(manifest.read_text())["finished"]):
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143 and "--resume continues" in err
    finished = manifest.read_text()
    time.sleep(3)  # no orphaned worker goes on writing segments
    assert manifest.read_text() == finished and not dst.exists()
    assert not list(job_folder(dst).glob("*.part.mp4"))


def test_a_tone_mapped_hdr_file_in_segments_joins_as_it_was_encoded(tmp_path: Path) -> None:
    """The join reads the input as the segments did: tone-mapped to SDR, VP9 8-bit fits
    .webm (read as HDR, the join would ask for a 10-bit format VP9 lacks here)."""
    from tests.streamer.test_hdr import write_hdr10

    src, dst = tmp_path / "hdr10.mp4", tmp_path / "sdr.webm"
    write_hdr10(src, frames=24)
    assert run(src, "-o", dst, "--tone-map", "--segment-seconds", "0.3") == 0
    with av.open(str(dst)) as out:
        frames = list(out.decode(video=0))
    assert len(frames) == 24 and frames[0].format.name == "yuv420p"
    assert frames[0].color_trc == 1


def test_auto_inference_size_is_decided_once_for_the_whole_job(tmp_path: Path) -> None:
    """Every worker must run the network at one size (segments that differ show at the
    joins): the job pins auto to what this machine chose, before any worker starts."""
    clip = tmp_path / "in.mp4"
    write_clip(clip, frames=4, size=(144, 256))
    config = RunConfig(model=EngineSettings(task="dehaze", model="dcp", device="cpu",
                                            cache_dir=str(tmp_path / "cache")))
    engine = Engine.build(config.model)
    source = VideoSource(str(clip))
    info = source.open()
    source.close()
    pinned = _pin_inference_size(config, info, lambda: engine)
    assert pinned.model.inference_size == (engine.runner.short_side(144, 256) or 144)
    explicit = RunConfig(model=EngineSettings(task="dehaze",
                                              model="dcp", device="cpu", inference_size=96))
    assert _pin_inference_size(explicit, info, lambda: engine) is explicit


def test_task_auto_pins_each_task_to_its_own_size(tmp_path: Path) -> None:
    """``--task auto`` runs three engines, and ``auto`` may choose a size for each (derain's
    colour fit costs more than the others'): the job pins each task's own, not the first's."""
    clip = tmp_path / "in.mp4"
    write_clip(clip, frames=4, size=(144, 256))
    config = RunConfig(model=EngineSettings(task="auto", model="dcp", device="cpu",
                                            cache_dir=str(tmp_path / "cache"),
                                            inference_size="dehaze=96"))
    engine = engine_for_settings(config.model)
    assert isinstance(engine, SceneEngine)
    source = VideoSource(str(clip))
    info = source.open()
    source.close()
    pinned = _pin_inference_size(config, info, lambda: engine)
    for task, one in engine.engines.items():
        assert pinned.model.size_for(task) == (one.runner.short_side(144, 256) or 144)
    assert pinned.model.size_for("dehaze") == 96
    derain = pinned.model.size_for("derain")  # its floor: 3/4 of 144 at least, never dehaze's
    assert isinstance(derain, int) and derain >= 108
    assert "auto" not in str(pinned.model.inference_size)


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray() for f in container.decode(video=0)]


def _only_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_segment_damaged_at_the_same_size_is_redone_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest holds each finished segment's SHA-256: 4 KB overwritten in place (the size
    unchanged) is found on --resume, said in one line, and that segment is enhanced again."""
    from streamer.errors import SinkError

    src, whole, resumed = tmp_path / "in.mp4", tmp_path / "whole.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=72, fps=24, size=(144, 256), options={"g": "24"})
    assert run(src, "-o", whole, "--segment-seconds", "1") == 0
    def crash(*_: object, **__: object) -> int:
        raise SinkError("the machine went down before the join")

    monkeypatch.setattr("streamer.jobs.job.join_segments", crash)
    assert run(src, "-o", resumed, "--segment-seconds", "1") == 2  # every segment finished
    monkeypatch.undo()
    segment = job_folder(resumed) / "segment00001.mp4"
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(255 - b for b in data[middle:middle + 4096])
    segment.write_bytes(bytes(data))
    capsys.readouterr()
    assert run(src, "-o", resumed, "--segment-seconds", "1", "--resume") == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "segment00001.mp4" in line]
    assert len(said) == 1 and "damaged" in said[0] and "redoing it" in said[0], err
    assert "resuming: 2 segments already done" in err and "segment 1 done" in err
    for x, y in zip(_frames(whole), _frames(resumed), strict=True):
        assert np.array_equal(x, y)


def test_a_second_run_of_a_running_job_is_refused_and_takes_over_once_it_died(
    tmp_path: Path
) -> None:
    """Two real processes: the second (--resume) is refused in one line (exit 2) and touches
    nothing while the first runs; once the first is SIGKILLed its lock is gone and the second
    continues the job."""
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=480, fps=24, size=(144, 256), options={"g": "24"})
    first = subprocess.Popen(_command(src, dst), stderr=subprocess.DEVNULL)
    manifest = job_folder(dst) / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
            manifest.is_file() and json.loads(manifest.read_text())["finished"]):
        time.sleep(0.05)
    try:
        second = subprocess.run(_command(src, dst, "--resume"), capture_output=True,
                                text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 2
        line = _only_error_line(second.stderr)
        assert "another run of this job" in line and f"process {first.pid}" in line, line
        assert "resuming" not in second.stderr
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL and not dst.exists()
    again = subprocess.run(_command(src, dst, "--resume"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "resuming: " in again.stderr and "resuming: 0 " not in again.stderr
    assert decoded_pts(dst) == decoded_pts(src) and not job_folder(dst).exists()


def test_the_job_lock_is_one_holder_at_a_time(tmp_path: Path) -> None:
    from streamer.jobs.lock import JobLock, JobLockedError

    folder = tmp_path / "out.mp4.hdm-job"
    with JobLock(folder), pytest.raises(JobLockedError, match=f"process {os.getpid()}"):
        JobLock(folder).acquire()
    with JobLock(folder):  # released: taken again
        pass


def test_a_full_disk_while_writing_a_segment_leaves_no_part_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC in the middle of segment 1 (after frames were written): one error line, exit
    2, segment 0 kept, no ``.part`` file; --resume then finishes the job."""
    from streamer.sinks.muxer import Muxer
    from streamer.sinks.tracks import Packets

    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=72, fps=24, size=(144, 256), options={"g": "24"})
    real_mux = Muxer.mux
    calls = [0]

    def full(self: Muxer, packets: Packets) -> None:
        if "segment00001.part" in self.target.label:
            calls[0] += 1
            if calls[0] > 5:  # the file holds frames by then
                raise OSError(errno.ENOSPC, "No space left on device")
        real_mux(self, packets)

    monkeypatch.setattr(Muxer, "mux", full)
    assert run(src, "-o", dst, "--segment-seconds", "1") == 2
    assert "No space left on device" in _only_error_line(capsys.readouterr().err)
    folder = job_folder(dst)
    assert sorted(p.name for p in folder.iterdir()) == ["job.lock", "manifest.json",
                                                         "segment00000.mp4"]
    monkeypatch.setattr(Muxer, "mux", real_mux)
    assert run(src, "-o", dst, "--segment-seconds", "1", "--resume") == 0
    assert decoded_pts(dst) == decoded_pts(src)


def test_ctrl_c_again_while_a_segment_drains_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C while the interrupted segment finishes what it read."""
    import streamer.jobs.segments as segments
    from streamer.runtime.server import Server

    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_clip(src, frames=72, fps=24, size=(144, 256), options={"g": "24"})

    class Interrupted(Server):
        def join(self) -> None:
            super().join()
            if any(s.id == "segment1" for s in self.sessions):
                raise KeyboardInterrupt

        def drain(self) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(segments, "Server", Interrupted)
    assert run(src, "-o", dst, "--segment-seconds", "1") == 130
    assert not list(job_folder(dst).glob("*.part*"))
    assert (job_folder(dst) / "segment00000.mp4").is_file()


@pytest.mark.slow
def test_a_job_gives_the_same_frames_in_this_process_as_by_workers(tmp_path: Path) -> None:
    """Segments enhanced here (``--workers 1``) and by worker processes are the same frames,
    so a job resumed with another worker count joins segments that match: the engine that
    measured ``auto`` here is not the one that runs them (its full resolution took I420
    planes where the workers' pinned ``full`` takes RGB, 2.2 levels apart on average). At
    160x90 no candidate is smaller than the frame: ``auto`` is full resolution on any
    machine, however loaded."""
    src = fog_clip(tmp_path / "fog.mp4", 48, (160, 90))
    home = tmp_path / "home"
    home.mkdir()
    runs = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}.mkv"
        done = subprocess.run(_command(src, out, "--workers", workers), capture_output=True,
                              text=True, env={**os.environ, "HOME": str(home)})
        assert done.returncode == 0, done.stderr
        runs.append(_frames(out))
    differing = [i for i, (x, y) in enumerate(zip(*runs, strict=True))
                 if not np.array_equal(x, y)]
    assert not differing, f"frames {differing} differ"


@pytest.mark.slow
def test_a_segmented_job_gives_the_same_frames_every_run(tmp_path: Path) -> None:
    """Issue 24, item 1: three runs of one segmented job by two workers give the same decoded
    frames. They share a cache of their own, as one user's commands do: the first measures
    ``auto``'s size, the others take it (a fresh measure on a loaded machine may choose
    another size, and so other frames, by design)."""
    src = fog_clip(tmp_path / "fog.mp4", 96)
    home = tmp_path / "home"
    home.mkdir()
    runs = []
    for attempt in range(3):
        out = tmp_path / f"out{attempt}.mkv"
        done = subprocess.run(_command(src, out, "--workers", "2"), capture_output=True,
                              text=True, env={**os.environ, "HOME": str(home)})
        assert done.returncode == 0, done.stderr
        runs.append(_frames(out))
    for other in runs[1:]:
        differing = [i for i, (x, y) in enumerate(zip(runs[0], other, strict=True))
                     if not np.array_equal(x, y)]
        assert not differing, f"frames {differing} differ between runs"
