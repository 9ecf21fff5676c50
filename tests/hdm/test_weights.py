"""The shipped weights: each entry's description matches its file and the model built from it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import hdm
from hdm.errors import CheckpointError, ModelConfigError
from hdm.weights import DEFAULT_WEIGHTS, Weights, WeightsInfo, default_weights
from tests.hdm.parts import as_hdm, conv_at

ENTRIES = list(Weights)


def test_every_task_has_default_weights() -> None:
    assert set(DEFAULT_WEIGHTS) == set(hdm.TASKS)
    assert all(member in ENTRIES for member in DEFAULT_WEIGHTS.values())


@pytest.mark.parametrize("member", ENTRIES, ids=[m.name for m in ENTRIES])
def test_entry_matches_its_file_and_model(member: Weights) -> None:
    info: WeightsInfo = member.value
    checkpoint = hdm.load_checkpoint(info.verified_path())
    assert (checkpoint.preset, checkpoint.task) == (info.preset, info.task)
    assert checkpoint.model.config.mask_mode == info.mask_mode == "soft"
    assert sum(p.numel() for p in checkpoint.model.parameters()) == info.parameters
    assert info.path.with_suffix(".md").is_file(), "every shipped file has a model card"
    assert info.metrics and all("psnr" in m and "ssim" in m for m in info.metrics.values())


@pytest.mark.parametrize("task", hdm.TASKS)
def test_default_weights_build_and_enhance(task: str) -> None:
    info = default_weights(task)
    model = hdm.build_model(info.preset, task=task, weights="default")
    with torch.no_grad():
        out = model(torch.rand(1, 3, 40, 56))
    assert out.shape == (1, 3, 40, 56) and 0 <= out.min() and out.max() <= 1


def test_default_weights_need_their_preset_and_a_task() -> None:
    info = default_weights("dehaze")
    other = "hdm" if info.preset == "hdm-s" else "hdm-s"
    with pytest.raises(ModelConfigError, match=f"for {info.preset!r}"):
        hdm.build_model(other, task="dehaze", weights="default")
    with pytest.raises(ModelConfigError, match="needs a task"):
        hdm.build_model(info.preset, weights="default")


def test_a_file_that_does_not_match_its_hash_is_refused() -> None:
    broken = dataclasses.replace(default_weights("derain"), sha256="0" * 64)
    with pytest.raises(CheckpointError, match="corrupt"):
        broken.verified_path()


def test_a_preset_without_shipped_weights_is_refused_never_random() -> None:
    with pytest.raises(ModelConfigError, match="weights='random'"):
        hdm.build_model("hdm", task="dehaze")  # the README's example; no hdm weights ship yet
    with pytest.raises(ModelConfigError, match="ambiguous"):
        hdm.build_model("hdm-s", task="dehaze", weights=None)  # type: ignore[arg-type]
    untrained = as_hdm(hdm.build_model("hdm-s", task="dehaze", weights="random"))
    shipped = as_hdm(hdm.build_model("hdm-s", task="dehaze"))
    assert not torch.equal(conv_at(untrained.conv0, 0).weight, conv_at(shipped.conv0, 0).weight)


def test_weights_members_and_the_resolver_agree_with_the_shipped_defaults() -> None:
    member = hdm.Weights.LOWLIGHT_LOL_SYNTH_GAIN_V2
    by_member = as_hdm(hdm.build_model(member.value.preset, weights=member))
    by_default = hdm.resolve("lowlight")
    assert isinstance(by_default, hdm.HDM)
    assert torch.equal(conv_at(by_member.conv0, 0).weight, conv_at(by_default.conv0, 0).weight)
    with pytest.raises(ModelConfigError, match="not 'dehaze'"):
        hdm.build_model(member.value.preset, task="dehaze", weights=member)
    soft = hdm.resolve("dehaze", mask_mode="soft")
    assert isinstance(soft, hdm.HDM) and soft.config.mask_mode == "soft"
    assert isinstance(hdm.resolve("dehaze", model="dcp"), hdm.ClassicalEnhancer)
    with pytest.raises(ModelConfigError, match="no region masks"):
        hdm.build_model("dcp", mask_mode="soft")
