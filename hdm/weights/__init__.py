"""Trained weights shipped inside the package, described by data.

Each member of :class:`Weights` names a file in this folder and everything a user needs to
trust it: preset, task, mask mode, data, steps, command, measured metrics and licence. The
loader checks the file's SHA-256 before use.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hdm.errors import CheckpointError, ModelConfigError

__all__ = ["DEFAULT_WEIGHTS", "REDUCED_WEIGHTS", "Weights", "WeightsInfo", "default_weights"]

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class WeightsInfo:
    """Description of one shipped checkpoint; ``metrics`` is {set: {metric: value}}."""

    file: str
    sha256: str
    preset: str
    task: str
    mask_mode: str
    parameters: int
    training_data: str
    steps: int
    command: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    input: str = "RGB, float in [0, 1], any size"
    licence: str = "weights: MIT like the code; trained on research-only data (see model card)"

    @property
    def path(self) -> Path:
        return FOLDER / self.file

    def verified_path(self) -> Path:
        """The file, after checking that it exists and has the recorded SHA-256."""
        if not self.path.is_file():
            raise CheckpointError(f"shipped weights missing: {self.path}; reinstall hdm-stream")
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise CheckpointError(f"{self.path} is corrupt (sha256 {digest[:12]}…); reinstall")
        return self.path


_CPU_TRAINED = "trained on the 2-core CPU development machine (no GPU was available)"


class Weights(enum.Enum):
    """Shipped checkpoints, named by task and training data."""

    LOWLIGHT_LOL_SYNTH_V1 = WeightsInfo(
        file="lowlight-hdm-s-v1.safetensors",
        sha256="aef65a87cbda8d4b52100f2269db97d3fadb0ff0b897e17f951cad5814543757",
        preset="hdm-s",
        task="lowlight",
        mask_mode="soft",
        parameters=306_567,
        training_data="LOL our485 subset (70 pairs) + synthetic low light on BSDS500/Kodak24; "
        + _CPU_TRAINED,
        steps=2000,
        command="hdm-stream train --task lowlight --out lowlight.safetensors "
        "--paired ../shared/train/lowlight/lol_our485_subset --clean "
        "../shared/train/clean/bsds500_train_subset ../shared/train/clean/kodak24 "
        "--steps 2000 --threads 1",
        metrics={"LOL eval (10)": {"psnr": 16.672, "psnr_y": 18.783, "ssim": 0.709}},
    )

    LOWLIGHT_LOL_SYNTH_GAIN_V2 = WeightsInfo(
        file="lowlight-hdm-s-v2.safetensors",
        sha256="b0aa96fd5fedaabfd83d1c5a12d8b3b14a90d3b33dbdb9e54c0bef3b5907dd3f",
        preset="hdm-s",
        task="lowlight",
        mask_mode="soft",
        parameters=307_368,
        training_data="LOL our485 subset (70 pairs, drawn 3x as often) + synthetic low light in "
        "linear light on BSDS500/Kodak24; gain output, colour term, from v1; " + _CPU_TRAINED,
        steps=1450,
        command="hdm-stream train --task lowlight --output gain --colour-weight 0.5 --init "
        "hdm/weights/lowlight-hdm-s-v1.safetensors ... (250 steps kept), then --real-weight 3 "
        "--lr 2e-4 --steps 1200 from those (final step kept); see the model card",
        metrics={"LOL eval (10)": {"psnr": 16.372, "psnr_y": 18.31, "ssim": 0.566}},
    )

    DEHAZE_MIXED_SYNTH_V1 = WeightsInfo(
        file="dehaze-hdm-s-v1.safetensors",
        sha256="76f73aa1093baaba4b0aef0f1b6d99a3d4700c58abce835d9dfc184dbd7b471f",
        preset="hdm-s",
        task="dehaze",
        mask_mode="soft",
        parameters=306_567,
        training_data="NYU/RESIDE synthetic, REVIDE-style and O-HAZE real pairs (159) + "
        "synthetic haze on BSDS500/Kodak24; " + _CPU_TRAINED,
        steps=2800,
        command="hdm-stream train --task dehaze --out dehaze.safetensors --paired "
        "../shared/train/dehaze/{nyu_aod_synthetic,reside_its_sots_samples,"
        "revide_style_real_pairs,ohaze_27_41} --clean ../shared/train/clean/"
        "{bsds500_train_subset,kodak24} --steps 2800 --threads 1 (lengthened twice; "
        "see the model card)",
        metrics={"O-HAZE #35": {"psnr": 21.039, "psnr_y": 22.881, "ssim": 0.819}},
    )

    DEHAZE_MIXED_SYNTH_REDUCED_V2 = WeightsInfo(
        file="dehaze-hdm-s-v2.safetensors",
        sha256="0318cfadd899619b2d27c681342d42e3287eb8660d5c86b8341ea227e14244dc",
        preset="hdm-s",
        task="dehaze",
        mask_mode="soft",
        parameters=306_567,
        training_data="as v1, trained for reduced inference sizes (crops scaled by 0.1-0.35, "
        "the result fitted back; hdm-stream train --reduced-scales); " + _CPU_TRAINED,
        steps=1031,
        command="hdm-stream train --task dehaze --init hdm/weights/dehaze-hdm-s-v1.safetensors "
        "--lr 2e-4 --crop 320 --reduced-scales 0.1 0.15 0.25 0.35 ... (see the model card)",
        metrics={"O-HAZE #35 at 96 px for 720p (scale 0.133)": {"psnr": 20.71, "ssim": 0.830},
                 "O-HAZE #35, full resolution": {"psnr": 19.53, "ssim": 0.840}},
    )
    DERAIN_RAIN100_SYNTH_V1 = WeightsInfo(
        file="derain-hdm-s-v1.safetensors",
        sha256="cd03e2f31ab407e77a01861fa8cd511a66e5ee6a22e6d7600f47997efe870714",
        preset="hdm-s",
        task="derain",
        mask_mode="soft",
        parameters=306_567,
        training_data="Rain100L/H, JORDER-E and SIRR synthetic pairs (165) + synthetic streaks "
        "on BSDS500/Kodak24; residual output; " + _CPU_TRAINED,
        steps=3500,
        command="hdm-stream train --task derain --output residual --out derain.safetensors "
        "--paired "
        "../shared/train/derain/{rain100l_prenet_train,rain100h_mspfn_train,"
        "jordere_small_heavy,sirr_synthetic_val} --clean ../shared/train/clean/"
        "{bsds500_train_subset,kodak24} --steps 3500 (2000, then resumed; see the model card)",
        metrics={
            "Rain100L (PReNet subset, 20)": {"psnr": 28.590, "psnr_y": 29.962, "ssim": 0.892},
            "Rain100L (MFDNet, 3)": {"psnr": 22.765, "psnr_y": 24.208, "ssim": 0.800},
            "Rain100H (MSPFN subset, 10)": {"psnr": 21.414, "psnr_y": 22.850, "ssim": 0.665},
            "rainy video frames (OTMSCSC a1, 20)": {"psnr": 28.636, "psnr_y": 30.145,
                                                    "ssim": 0.919},
        },
    )


DEFAULT_WEIGHTS: dict[str, Weights] = {
    "dehaze": Weights.DEHAZE_MIXED_SYNTH_V1,
    "derain": Weights.DERAIN_RAIN100_SYNTH_V1,
    "lowlight": Weights.LOWLIGHT_LOL_SYNTH_GAIN_V2,
}


REDUCED_WEIGHTS: dict[str, Weights] = {"dehaze": Weights.DEHAZE_MIXED_SYNTH_REDUCED_V2}
"""Where a task ships weights trained for reduced inference sizes (``hdm-stream train
--reduced-scales``): what ``weights: default`` means when the engine's inference size is not
``full``. A task missing here uses its :data:`DEFAULT_WEIGHTS` at every size."""


def default_weights(task: str | None) -> WeightsInfo:
    """The shipped weights for ``task``; ModelConfigError when none ship for it."""
    if task is None:
        raise ModelConfigError("weights='default' needs a task (dehaze, derain or lowlight)")
    member = DEFAULT_WEIGHTS.get(task)
    if member is None:
        raise ModelConfigError(
            f"no trained weights for {task!r} ship with this version; pass a checkpoint path, "
            "or use --model dcp for the classical enhancer"
        )
    info: WeightsInfo = member.value
    return info
