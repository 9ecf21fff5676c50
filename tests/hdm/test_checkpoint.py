"""Our checkpoint format and the release's, including its exact key names and shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hdm
from hdm.errors import CheckpointError, ModelConfigError, PresetMismatchError
from tests.hdm.parts import as_hdm, conv_at


def release_state_dict(dcn_bias: bool = True) -> dict[str, torch.Tensor]:
    """The release's state_dict for the paper's network, key by key as its HDM.py names them
    (written out here from the reference, not derived from our module names)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int, k: int, groups: int = 1) -> None:
        shapes[f"{name}.weight"] = (cout, cin // groups, k, k)
        shapes[f"{name}.bias"] = (cout,)

    conv("conv0.0", 3, 64, 5)
    for stage in ("conv1", "conv2"):
        conv(f"{stage}.0", 64, 64, 3)
        conv(f"{stage}.1", 64, 64, 3)
    for g in range(3):
        for b in range(9):
            block = f"FAB.{g}.gp.{b}"
            conv(f"{block}.conv1", 64, 64, 3)
            conv(f"{block}.conv2", 64, 64, 3)
            conv(f"{block}.calayer.ca.0", 64, 8, 1)
            conv(f"{block}.calayer.ca.2", 8, 64, 1)
            conv(f"{block}.palayer.pa.0", 64, 8, 1)
            conv(f"{block}.palayer.pa.2", 8, 1, 1)
        conv(f"FAB.{g}.gp.9", 64, 64, 3)
    shapes["dcn_block.dcn.weight"] = (64, 64, 3, 3)
    if dcn_bias:
        shapes["dcn_block.dcn.bias"] = (64,)
    conv("dcn_block.dcn.conv_offset_mask", 64, 27, 3)
    for name in ("drconv", "drconv_phy"):
        conv(f"{name}.conv_kernel.1", 64, 25, 1)
        conv(f"{name}.conv_kernel.3", 25, 20480, 1, groups=5)
    conv("drconv.conv_guide", 64, 5, 3)
    for up in ("deconv1", "deconv2"):
        shapes[f"{up}.0.weight"] = (64, 64, 4, 4)
        shapes[f"{up}.0.bias"] = (64,)
    conv("output.0", 64, 64, 5)
    conv("output.1", 64, 64, 5)
    conv("output.2", 64, 3, 5)
    for i in range(1, 5):
        shapes[f"mix{i}.w"] = (1,)
    return {f"module.{k}": torch.randn(v) * 0.05 for k, v in shapes.items()}


def write_release_checkpoint(path: Path, dcn_bias: bool = True) -> dict[str, torch.Tensor]:
    state = release_state_dict(dcn_bias)
    torch.save(
        {"model": state, "step": 5000, "max_psnr": 35.8, "max_ssim": 0.98, "psnrs": [30.1]}, path
    )
    return state


def test_release_checkpoint_has_the_documented_key_count_and_size(tmp_path: Path) -> None:
    state = write_release_checkpoint(tmp_path / "hdm_haze_sots.pk")
    assert len(state) == 368
    assert sum(v.numel() for v in state.values()) == 2_946_684


def test_release_checkpoint_loads_strictly_onto_our_names(tmp_path: Path) -> None:
    path = tmp_path / "hdm_haze_sots.pk"
    state = write_release_checkpoint(path)
    model = hdm.load_official_checkpoint(path)
    assert not model.training
    ours = model.state_dict()
    pairs = {
        "module.output.2.weight": "head.2.weight",
        "module.FAB.2.gp.9.bias": "body.2.gp.9.bias",
        "module.FAB.1.gp.4.palayer.pa.2.weight": "body.1.gp.4.palayer.pa.2.weight",
        "module.dcn_block.dcn.conv_offset_mask.weight": "deform.offset_mask.weight",
        "module.dcn_block.dcn.bias": "deform.bias",
        "module.drconv_phy.conv_kernel.3.weight": "region.conv_kernel.3.weight",
        "module.mix2.w": "mix2.w",
    }
    for release_key, our_key in pairs.items():
        assert torch.equal(ours[our_key], state[release_key])
    with torch.no_grad():
        y = model(torch.rand(1, 3, 32, 32))
    assert torch.isfinite(y).all()


def test_release_checkpoint_without_dcn_bias_loads_a_zero_bias(tmp_path: Path) -> None:
    path = tmp_path / "nobias.pk"
    write_release_checkpoint(path, dcn_bias=False)
    model = hdm.load_official_checkpoint(path)
    assert model.deform.bias is not None
    assert torch.equal(model.deform.bias, torch.zeros(64))


def test_release_checkpoint_refuses_the_small_preset(tmp_path: Path) -> None:
    path = tmp_path / "hdm.pk"
    write_release_checkpoint(path)
    with pytest.raises(PresetMismatchError, match="'hdm'"):
        hdm.load_official_checkpoint(path, preset="hdm-s")


def test_release_checkpoint_with_a_missing_tensor_is_refused(tmp_path: Path) -> None:
    state = release_state_dict()
    del state["module.FAB.0.gp.3.conv2.weight"]
    path = tmp_path / "broken.pk"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match="does not fit"):
        hdm.load_official_checkpoint(path)


def test_our_checkpoint_round_trips_with_its_metadata(tmp_path: Path) -> None:
    model = as_hdm(hdm.build_model("hdm-s", task="lowlight", weights="random",
                                   mask_mode="soft").eval())
    path = tmp_path / "lowlight.safetensors"
    hdm.save_checkpoint(model, path, task="lowlight", metrics={"lol": {"psnr": 21.0}})
    loaded = hdm.load_checkpoint(path)
    assert (loaded.preset, loaded.task) == ("hdm-s", "lowlight")
    assert loaded.metrics == {"lol": {"psnr": 21.0}}
    assert loaded.model.config == model.config
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))


def test_build_model_loads_a_checkpoint_path(tmp_path: Path) -> None:
    model = as_hdm(hdm.build_model("hdm-s", weights="random"))
    path = tmp_path / "dehaze.safetensors"
    hdm.save_checkpoint(model, path, task="dehaze")
    built = as_hdm(hdm.build_model("hdm-s", task="dehaze", weights=path))
    assert torch.equal(conv_at(built.conv0, 0).weight, conv_at(model.conv0, 0).weight)
    with pytest.raises(ModelConfigError, match="trained for 'dehaze'"):
        hdm.build_model("hdm-s", task="derain", weights=path)
    with pytest.raises(PresetMismatchError, match="ask for preset 'hdm-s'"):
        hdm.build_model("hdm", weights=path)


def test_missing_and_corrupt_files_raise_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        hdm.load_checkpoint(tmp_path / "nope.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(CheckpointError, match="safetensors"):
        hdm.load_checkpoint(garbage)
    noise = tmp_path / "noise.pk"
    noise.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CheckpointError, match="weights-only"):
        hdm.load_official_checkpoint(noise)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not an hdm-stream checkpoint"):
        hdm.load_checkpoint(foreign)


def test_pickled_python_objects_are_never_executed(tmp_path: Path) -> None:
    path = tmp_path / "evil.pk"
    torch.save({"model": {}, "payload": Path("/etc/passwd")}, path)
    with pytest.raises(CheckpointError, match="arbitrary Python objects"):
        hdm.load_official_checkpoint(path)
