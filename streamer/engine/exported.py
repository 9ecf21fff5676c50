"""CPU runtimes for the network: OpenVINO and ONNX Runtime, from one ONNX export.

On the 2-core dev machine (AMD EPYC with AVX-512 BF16) HDM-S at 171x96 took 19 ms a frame in
PyTorch eager (channels_last), 21 ms in ONNX Runtime and 20 ms in OpenVINO at fp32, and 7.9 ms
in OpenVINO at bf16 (its default on CPUs that have bf16 instructions); see the README's
real-time table. The export is made once per model and input shape, with the deformable
convolution as standard ops (GridSample), and cached on disk keyed by the weights' hash, the
shape, the opset and the torch version; OpenVINO caches its compiled graphs beside it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from streamer.errors import EngineError

__all__ = ["EXPORTED_BACKENDS", "ExportedRunner", "Runtime", "runtime_version"]

log = logging.getLogger(__name__)

Runtime = Literal["openvino", "onnxruntime"]
EXPORTED_BACKENDS: tuple[Runtime, ...] = ("openvino", "onnxruntime")
OPSET = 18

_Session = Callable[[list[np.ndarray]], np.ndarray]


def runtime_version(runtime: Runtime) -> str | None:
    """The installed version of ``runtime``, or None when it cannot be imported."""
    try:
        if runtime == "openvino":
            import openvino

            return str(openvino.__version__)
        import onnxruntime

        return str(onnxruntime.__version__)
    except ImportError:
        return None


class ExportedRunner(nn.Module):
    """Runs a model through an exported graph, one per input shape (as compiled backends
    specialise to the warm-up batch size, see runner.py).

    Args:
        model: the network (HDM takes ``(x, masks)``, the classical enhancer ``(x,)``).
        runtime: ``openvino`` or ``onnxruntime``.
        weights_hash: computes the model's content hash (runner.model_hash), part of the
            cache key; called when an export is made or looked up, so a model changed after
            the engine was built is never served another's export.
        precision: ``bf16``, ``fp32`` or ``auto`` (OpenVINO: bf16 where the CPU has it;
            ONNX Runtime runs fp32 only).
        cache_dir: where the exports and OpenVINO's compiled graphs are kept.
    """

    def __init__(self, model: nn.Module, runtime: Runtime,
                 weights_hash: Callable[[nn.Module], str], precision: str, cache_dir: Path
                 ) -> None:
        super().__init__()
        if runtime_version(runtime) is None:
            raise EngineError(f"the {runtime} backend needs the {runtime} package "
                              f"(pip install {runtime})")
        if runtime == "onnxruntime" and precision not in ("auto", "fp32"):
            raise EngineError(f"the onnxruntime backend runs fp32 only, not {precision}; use "
                              "--precision fp32, or --backend openvino for bf16")
        self.model = model
        self.runtime = runtime
        self.weights_hash = weights_hash
        self.precision = precision
        self.cache_dir = cache_dir
        self._sessions: dict[tuple[tuple[int, ...], ...], _Session] = {}

    @property
    def precision_name(self) -> str:
        """The precision the runtime computes in (OpenVINO's own choice for ``auto``)."""
        if self.runtime == "onnxruntime":
            return "fp32"
        if self.precision != "auto":
            return self.precision
        import openvino

        hint = openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
        return {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(hint, hint)

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        inputs = [x] if masks is None else [x, masks]
        arrays = [np.ascontiguousarray(t.detach().float().cpu().numpy()) for t in inputs]
        key = tuple(a.shape for a in arrays)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = self._load(inputs)
        return torch.from_numpy(session(arrays))

    def _load(self, inputs: list[torch.Tensor]) -> _Session:
        shape = "_".join("x".join(str(d) for d in t.shape) for t in inputs)
        name = (f"{self.weights_hash(self.model)}-{shape}-opset{OPSET}-torch{torch.__version__}"
                ".onnx")
        path = self.cache_dir / name
        if not path.is_file():
            _export(self.model, inputs, path)
        threads = torch.get_num_threads()
        if self.runtime == "openvino":
            return _openvino_session(path, threads, self.precision, self.cache_dir / "openvino")
        return _onnxruntime_session(path, threads)


def _export(model: nn.Module, inputs: list[torch.Tensor], path: Path) -> None:
    """The ONNX export, written through a temporary name so a crash never leaves half a file
    that a later run would trust."""
    log.warning("exporting the network for %s (once; cached at %s)",
                "+".join("x".join(str(d) for d in t.shape) for t in inputs), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    plain = [t.detach().float().contiguous() for t in inputs]
    try:
        # The exporter prints its progress, logs each optimisation pass and warns about torch
        # APIs it uses: none of it is the user's business.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet(
                "torch.onnx", "torch.export", "onnxscript", "onnx_ir"):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, tuple(plain), str(partial), dynamo=True,
                              opset_version=OPSET, external_data=False, verbose=False)
        partial.replace(path)
    except Exception as error:  # the exporter raises many types; one line names the cause
        partial.unlink(missing_ok=True)
        raise EngineError(f"could not export the network to ONNX: {error}".splitlines()[0]
                          ) from error


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Only errors from these loggers while the block runs."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _openvino_session(path: Path, threads: int, precision: str, cache: Path) -> _Session:
    import openvino

    config: dict[str, object] = {"INFERENCE_NUM_THREADS": threads,
                                 "PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(cache)}
    if precision != "auto":
        config["INFERENCE_PRECISION_HINT"] = "f32" if precision == "fp32" else "bf16"
    compiled = openvino.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    output = compiled.output(0)

    def run(arrays: list[np.ndarray]) -> np.ndarray:
        return np.array(request.infer(arrays)[output], copy=True)

    return run


def _onnxruntime_session(path: Path, threads: int) -> _Session:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(arrays: list[np.ndarray]) -> np.ndarray:
        result: np.ndarray = session.run(None, dict(zip(names, arrays, strict=True)))[0]
        return result

    return run
