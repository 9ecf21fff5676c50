"""Configuration: presets load, unknown keys and wrong types are refused with the key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamer.config import RunConfig, SegmentSettings, load_config
from streamer.errors import ConfigError

# run presets; configs/serve*.yaml are serve configs (tests/streamer/test_serve.py loads them)
PRESETS = sorted(p for p in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")
                 if not p.stem.startswith("serve"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_shipped_preset_loads(preset: Path) -> None:
    assert isinstance(load_config(preset), RunConfig)


def test_presets_exist() -> None:
    assert {p.stem for p in PRESETS} >= {"file-dehaze", "camera-lowlight", "publish"}


def test_values_reach_their_sections(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: {task: derain}\nbatch: {size: 8, max_delay_ms: 5}\n"
                    "source: {options: {rtsp_transport: tcp}, reconnect: {watchdog_s: 2}}\n")
    config = load_config(path)
    assert config.model.task == "derain" and config.batch.size == 8
    assert config.batch.max_delay_ms == 5.0 and isinstance(config.batch.max_delay_ms, float)
    assert config.source.options == {"rtsp_transport": "tcp"}
    assert config.source.reconnect.watchdog_s == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batch: {sise: 4}", "'batch.sise'"),
        ("modle: {task: dehaze}", "'modle'"),
        ("source: {reconnect: {watchdog: 1}}", "'source.reconnect.watchdog'"),
        ("batch: {size: four}", "'batch.size' must be int"),
        ("smoothing: {enabled: 3}", "'smoothing.enabled' must be bool"),
        ("publish: {mode: broadcast}", "'publish.mode' must be one of ['pub', 'push']"),
        ("model: {backend: onnx}", "'model.backend' must be one of"),
        ("batch: {size: 0}", "batch.size must be >= 1"),
        ("publish: {hwm: 0}", "publish.hwm must be >= 1"),
        ("batch: [1, 2]", "batch must be a mapping"),
        ("model: {task: null}", "'model.task' cannot be empty"),
        ("model: {strength: 1.5}", "model.strength must be in [0, 1]"),
        ("smoothing: {alpha: 0}", "smoothing.alpha must be in (0, 1]"),
        ("stabiliser: {static_weight: 2}", "stabiliser.static_weight must be in (0, 1]"),
        ("stabiliser: {noise_levels: 9, motion_levels: 3}", "stabiliser: need 0 <= noise_levels"),
        ("stabiliser: {camera_weight: 0}", "stabiliser.camera_weight must be in (0, 1]"),
        ("encode: {bitrate: 8Q}", "encode.bitrate must look like 8M"),  # at load, not at open
        ("model: {task: blur}", "'model.task' must be one of ['auto', 'dehaze'"),
        ("model: {fit_window: 0.7}", "model.fit_window must be auto or a fraction"),
        ("model: {fit_window: wide}", "model.fit_window must be auto or a fraction"),
    ],
)
def test_bad_keys_and_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: {task: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_overrides_ignore_unset_flags() -> None:
    config = RunConfig().with_overrides(batch={"size": None, "max_delay_ms": 10.0}, output=None)
    assert config.batch.size == RunConfig().batch.size and config.batch.max_delay_ms == 10.0


def test_presets_load_by_name_from_the_installed_package() -> None:
    from streamer.config import PRESETS as INSTALLED

    by_name = load_config("file-dehaze")
    assert by_name == load_config(INSTALLED / "file-dehaze.yaml") and by_name.encode.crf == 18
    with pytest.raises(ConfigError, match="presets by name: .*'camera-lowlight'"):
        load_config("no-such-preset")


def test_an_unknown_pixel_format_is_refused_with_examples() -> None:
    from streamer.sinks.encoder import EncodeSettings

    with pytest.raises(ConfigError, match="not a pixel format"):
        EncodeSettings(pix_fmt="yuv9000p")
    assert EncodeSettings(pix_fmt="yuv444p").pix_fmt == "yuv444p"


def test_a_crf_for_an_encoder_without_one_is_refused() -> None:
    from streamer.sinks.encoder import EncodeSettings

    with pytest.raises(ConfigError, match="takes no crf"):
        EncodeSettings(codec="mpeg4", crf=10)
    assert EncodeSettings(codec="mpeg4").effective_crf("mpeg4") is None  # own rate control
    assert EncodeSettings().effective_crf("libx264") == 20
    assert EncodeSettings(crf=18, bitrate="8M").effective_crf("libx264") is None  # bitrate wins


def test_a_preset_of_the_other_command_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"serve is a preset for hdm-stream serve, not run"):
        load_config("serve")
    from streamer.service.config import load_serve_config

    with pytest.raises(ConfigError, match=r"file-dehaze is a preset for hdm-stream run"):
        load_serve_config("file-dehaze")
    with pytest.raises(ConfigError) as listed:
        load_config("nope")
    assert "'serve'" not in str(listed.value) and "'file-dehaze'" in str(listed.value)


def test_every_run_flag_has_help_and_each_setting_flag_its_default() -> None:
    from streamer.cli.main import build_parser
    from streamer.cli.run import SETTING_FLAGS

    parser = build_parser()
    run = next(a for a in parser._actions if a.dest == "command").choices["run"]  # type: ignore[index]
    actions = [a for a in run._actions if a.dest != "help"]
    assert all(a.help for a in actions), [a.dest for a in actions if not a.help]
    shown = {a.dest: a.help for a in actions if a.dest in SETTING_FLAGS}
    assert set(shown) == set(SETTING_FLAGS)  # every entry of the table is a flag
    assert shown["batch"].endswith("(default: 4)") and shown["crf"].endswith("(default: none)")
    assert shown["task"].endswith("(default: auto)")


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        ("segments: {workers: 2}\npublish: {endpoint: 'tcp://127.0.0.1:5555'}\n",
         ["--workers", "2", "--publish", "tcp://127.0.0.1:5555"],
         "segments.workers: segments (--segment-seconds, --workers, --ray, --resume) write a "
         "file"),
        ("segments: {seconds: 5}\nsource: {max_frames: 10}\n",
         ["--segment-seconds", "5", "--max-frames", "10"],
         "source.max_frames (--max-frames) cannot be used with segments (segments.seconds)"),
        ("segments: {resume: true}\nsource: {live: true}\n", ["--resume", "--live"],
         "source.live (--live) cannot be used with segments (segments.resume)"),
        ("segments: {seconds: 0}\n", ["--segment-seconds", "0"],
         "segments.seconds: --segment-seconds must be > 0, got 0"),
        ("segments: {workers: 0}\n", ["--workers", "0"],
         "segments.workers: --workers must be >= 1, got 0"),
    ],
)
def test_the_segment_rules_are_the_settings_the_same_from_yaml_and_flags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, flags: list[str],
        message: str) -> None:
    from tests.streamer.commands import run

    cfg = tmp_path / "segments.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(cfg)
    for given in (["--config", str(cfg)], flags):
        assert run("lavfi:testsrc2=d=1", "-o", tmp_path / "out.mp4", *given) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (given, err)


def test_a_yaml_segments_section_runs_a_segmented_job(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.streamer.clips import decoded_pts, write_clip
    from tests.streamer.commands import run

    src, dst, cfg = tmp_path / "in.mp4", tmp_path / "out.mp4", tmp_path / "segments.yaml"
    write_clip(src, frames=48, audio=False, options={"g": "12"})
    cfg.write_text("segments: {seconds: 0.5, preroll: 4}\n")
    assert run(src, "-o", dst, "--config", cfg) == 0
    assert "fps overall" in capsys.readouterr().err  # a segmented job's end line
    assert decoded_pts(dst) == decoded_pts(src)


def test_segment_workers_are_one_per_device_unless_given() -> None:
    devices = ("cuda:0", "cuda:1")
    assert SegmentSettings(devices=devices).worker_count == 2
    assert SegmentSettings(workers=3, devices=devices).worker_count == 3
    assert SegmentSettings(workers=1).worker_count == 1
