"""TensorRT engine: ONNX export -> builder (optimisation profile, timing cache) -> serialized plan on disk.

``tensorrt`` is imported lazily and is optional (NVIDIA's wheels come from NVIDIA's index; see README). The
``tensorrt`` extra resolves to TensorRT 11.4, whose ``tensorrt`` package depends on ``tensorrt_cu13``: the CUDA 13
build, which needs an NVIDIA driver new enough for CUDA 13; TensorRT 10 (``tensorrt-cu12``) works as well. The
network is always built *strongly typed* from a graph that carries its precision (fp16/bf16 convolutions, fp32
I/O and fp32 channel-attention pooling, see :mod:`imcsr_live.engine.onnx_export`): TensorRT 11 removed the
FP16/BF16/INT8 builder flags, and a strongly typed network builds the same plan under TensorRT 10 (which needs the
``STRONGLY_TYPED`` creation flag, value 1 in 10.16) and 11 (where strong typing is always on and the flag, value 0
in 11.4, is deprecated and ignored).

Plans are cached under a key of (ONNX SHA-256, TensorRT version, GPU name, compute capability, precision,
shape profile) with a JSON sidecar; a cached plan that fails to deserialise (null engine: TensorRT or driver
upgraded, file damaged) is rebuilt with a warning; an explicitly given plan that fails raises
:class:`~imcsr_live.errors.EnginePlanError` naming what differs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from imcsr_live.engine.base import BaseEngine, Progress
from imcsr_live.engine.cache import cache_dir, cache_key
from imcsr_live.engine.model_source import ModelSource
from imcsr_live.engine.onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx
from imcsr_live.errors import EngineError, EnginePlanError
from imcsr_live.fileio import atomic_write, file_sha256

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "TensorRT is not installed: on the scope PC (NVIDIA GPU + driver, internet access) run "
    "`pip install 'imcsr-live[tensorrt]'` (the tensorrt package fetches NVIDIA's wheels from NVIDIA's own "
    "index), then check that `imcsr-live info` lists 'tensorrt'"
)
WORKSPACE_BYTES = 4 << 30


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module.

    Raises
    ------
    EngineError
        With the install hint when ``tensorrt`` is not installed, or with the loader's own message (one line) when
        it is installed but does not load (e.g. ``libnvonnxparser.so.11: cannot open shared object file``).
    """
    try:
        import tensorrt
    except ModuleNotFoundError as exc:
        if exc.name == "tensorrt":
            raise EngineError(INSTALL_HINT) from None
        raise EngineError(_load_failure(exc)) from exc
    except (ImportError, OSError) as exc:  # OSError: the Windows loader's "Could not find: nvinfer_11.dll"
        raise EngineError(_load_failure(exc)) from exc
    return tensorrt


def _load_failure(exc: BaseException) -> str:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return (
        f"TensorRT is installed but does not load: {detail} (its NVIDIA libraries are missing or do not match; "
        "reinstall with `pip install 'imcsr-live[tensorrt]'` and check `imcsr-live info`)"
    )


def tensorrt_import_problem() -> str | None:
    """Why ``import tensorrt`` fails here (one line: not installed, or the loader's error), or None if it works."""
    try:
        import_tensorrt()
    except EngineError as exc:
        return str(exc)
    return None


def trt_major(trt: ModuleType) -> int:
    """Major version of a ``tensorrt`` module (``"10.7.0"`` -> 10)."""
    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError:
        raise EngineError(f"cannot read the TensorRT version from {trt.__version__!r}") from None


def network_flags(trt: ModuleType) -> int:
    """Creation flags for a strongly typed network under TensorRT 10 or 11.

    TensorRT 10 needs ``STRONGLY_TYPED`` (otherwise the graph's fp16 would be re-chosen by the builder). In 11
    strong typing is always on: 11.4 keeps the flag (value 0, "deprecated ... ignored") and we pass no flags.
    """
    if trt_major(trt) >= 11:
        return 0
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        raise EngineError(
            f"TensorRT {trt.__version__} cannot build strongly typed networks; install TensorRT 10 or newer"
        )
    return 1 << int(flag)


def engine_device_memory(engine: Any) -> int:
    """Device memory an execution context of ``engine`` needs: ``device_memory_size_v2`` (TensorRT >= 10.1; the only
    one in 11), read ``device_memory_size`` (deprecated in 10.1) only where ``_v2`` is missing."""
    if hasattr(engine, "device_memory_size_v2"):
        return int(engine.device_memory_size_v2)
    return int(getattr(engine, "device_memory_size", 0))


@dataclass(frozen=True)
class ShapeProfile:
    """Optimisation profile: smallest, typical and largest (H, W) the plan accepts."""

    min_hw: tuple[int, int]
    opt_hw: tuple[int, int]
    max_hw: tuple[int, int]

    @classmethod
    def fixed(cls, hw: tuple[int, int]) -> ShapeProfile:
        """A plan for exactly one frame size (fastest kernels)."""
        hw = (int(hw[0]), int(hw[1]))
        return cls(hw, hw, hw)

    def covers(self, hw: tuple[int, int]) -> bool:
        return all(lo <= v <= hi for lo, v, hi in zip(self.min_hw, hw, self.max_hw, strict=True))


@dataclass(frozen=True)
class PlanSpec:
    """Everything a serialized plan depends on; its :meth:`key` names the cache file."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    in_frames: int
    profile: ShapeProfile

    def key(self) -> str:
        return cache_key(asdict(self))

    def describe(self) -> str:
        return (
            f"TensorRT {self.tensorrt_version}, {self.gpu_name} ({self.compute_capability}), {self.precision}, "
            f"frames {self.profile.min_hw}..{self.profile.max_hw}"
        )


def gpu_identity(device: torch.device) -> tuple[str, str]:
    """(GPU name, compute capability like ``sm_90``) of a CUDA device."""
    props = torch.cuda.get_device_properties(device)
    return str(props.name), f"sm_{props.major}{props.minor}"


def plan_paths(spec: PlanSpec, name: str) -> tuple[Path, Path]:
    """(plan, sidecar JSON) in the engine cache for ``spec``."""
    base = cache_dir() / "tensorrt" / f"{name}-{spec.precision}-{spec.key()}"
    return base.with_suffix(".plan"), base.with_suffix(".json")


def timing_cache_path(trt_version: str, gpu_name: str, capability: str) -> Path:
    """One timing cache per TensorRT version and GPU (shared by every model: it caches kernel timings)."""
    tag = cache_key({"trt": trt_version, "gpu": gpu_name, "cc": capability})
    return cache_dir() / "tensorrt" / f"timing-{tag}.cache"


def _logger(trt: ModuleType) -> Any:
    """A TensorRT logger that forwards to ours and keeps the last errors for our messages."""

    class _Bridge(trt.ILogger):  # type: ignore[name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(str(msg))
                log.warning("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.info("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return _Bridge()


def _progress_monitor(trt: ModuleType, progress: Progress) -> Any:
    """A TensorRT builder progress monitor (TensorRT >= 10) reporting the top-level phase to ``progress``."""

    class _Monitor(trt.IProgressMonitor):  # type: ignore[name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}
            self.done = 0.1  # nested phases restart their counts: report a fraction that never goes back

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.steps[phase_name] = max(int(num_steps), 1)
            if parent_phase is None:
                progress(f"tensorrt: {phase_name}", 0.1)

        def step_complete(self, phase_name: str, step: int) -> bool:
            total = self.steps.get(phase_name, 1)
            self.done = max(self.done, 0.1 + 0.85 * min((step + 1) / total, 1.0))
            progress(f"tensorrt: {phase_name} {step + 1}/{total}", self.done)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            self.steps.pop(phase_name, None)

    return _Monitor()


def build_plan(
    trt: ModuleType,
    onnx_path: Path,
    spec: PlanSpec,
    timing_cache: Path | None,
    workspace_bytes: int = WORKSPACE_BYTES,
    progress: Progress | None = None,
) -> bytes:
    """Parse the ONNX graph and build a serialized plan for ``spec.profile`` (updates the timing cache)."""
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"TensorRT could not parse {onnx_path.name}: {errors or 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    profile = builder.create_optimization_profile()
    f = spec.in_frames
    p = spec.profile
    profile.set_shape(INPUT_NAME, (1, f, *p.min_hw), (1, f, *p.opt_hw), (1, f, *p.max_hw))
    config.add_optimization_profile(profile)
    old = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    cache = config.create_timing_cache(old)
    if not config.set_timing_cache(cache, False):
        # A timing cache from another TensorRT/GPU: start a fresh one rather than fail the build.
        log.warning("TensorRT timing cache %s does not match; starting a new one", timing_cache)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    if progress is not None and hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = _progress_monitor(trt, progress)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        detail = "; ".join(logger.errors[-3:]) or "no details"
        raise EngineError(f"TensorRT failed to build a plan for {onnx_path.name} ({spec.describe()}): {detail}")
    if timing_cache is not None:
        atomic_write(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(plan))


def incompatibility_message(plan_path: Path, wanted: PlanSpec, logger_errors: list[str]) -> str:
    """Why a plan file does not load here, naming what differs from the sidecar written next to it."""
    sidecar = plan_path.with_suffix(".json")
    diffs: list[str] = []
    if sidecar.is_file():
        try:
            built = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            built = {}
        for key, label in (
            ("tensorrt_version", "TensorRT"),
            ("gpu_name", "GPU"),
            ("compute_capability", "compute capability"),
        ):
            have = getattr(wanted, key)
            if key in built and built[key] != have:
                diffs.append(f"{label} {built[key]} (here {have})")
    what = f"it was built for {', '.join(diffs)}" if diffs else "it is damaged or was built elsewhere"
    extra = f" TensorRT said: {logger_errors[-1]}" if logger_errors else ""
    return (
        f"TensorRT plan {plan_path} cannot be loaded on this machine: {what}. Plans are specific to the TensorRT "
        f"version and GPU; rebuild it here with `imcsr-live export --model M --engine tensorrt`.{extra}"
    )


class TensorRTEngine(BaseEngine):
    """The IMC-SR network as a TensorRT plan on one CUDA GPU.

    Parameters
    ----------
    profile
        Shape profile of the plan; default: a fixed-size plan for each frame size met (built at warm-up).
    plan_path
        Load this plan instead of the cache (raises :class:`EnginePlanError` if it does not fit here).
    gpu
        (name, compute capability) override, for tests with a fake ``tensorrt`` on the CPU.
    """

    kind = "tensorrt"

    def __init__(
        self,
        source: ModelSource,
        precision: str = "fp16",
        *,
        device: str = "cuda",
        profile: ShapeProfile | None = None,
        plan_path: str | Path | None = None,
        onnx_path: str | Path | None = None,
        gpu: tuple[str, str] | None = None,
        max_tile_pixels: int | None = None,
    ) -> None:
        super().__init__(source, precision, max_tile_pixels=max_tile_pixels)
        self.trt = import_tensorrt()
        self.device = torch.device(device)
        if gpu is None:
            if self.device.type != "cuda" or not torch.cuda.is_available():
                raise EngineError("TensorRT needs a CUDA GPU; none is visible to PyTorch here")
            gpu = gpu_identity(self.device)
        self.gpu_name, self.capability = gpu
        self.normalize_on = self.device if self.device.type == "cuda" else None
        self.profile = profile
        self.explicit_plan = Path(plan_path) if plan_path is not None else None
        self._onnx_path = Path(onnx_path) if onnx_path is not None else None
        self._logger = _logger(self.trt)
        self.runtime = self.trt.Runtime(self._logger)
        self._engines: list[tuple[ShapeProfile, Any, Any]] = []  # (profile, ICudaEngine, execution context)
        self.last_plan: Path | None = None
        if self.explicit_plan is not None:
            self._load_explicit()

    # -- plans ------------------------------------------------------------------------------------------------
    @property
    def onnx_path(self) -> Path:
        if self._onnx_path is None:
            self._onnx_path = export_onnx(self.source, self.precision)
        return self._onnx_path

    def spec_for(self, profile: ShapeProfile) -> PlanSpec:
        return PlanSpec(
            onnx_sha256=file_sha256(self.onnx_path),
            tensorrt_version=str(self.trt.__version__),
            gpu_name=self.gpu_name,
            compute_capability=self.capability,
            precision=self.precision,
            in_frames=self.source.cfg.in_frames,
            profile=profile,
        )

    def _deserialize(self, data: bytes) -> Any:
        self._logger.errors.clear()
        try:
            engine = self.runtime.deserialize_cuda_engine(data)
        except Exception as exc:  # some versions raise instead of returning None
            self._logger.errors.append(str(exc))
            engine = None
        return engine

    def _add_engine(self, profile: ShapeProfile, engine: Any) -> None:
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_dtype(name) != self.trt.DataType.FLOAT:
                raise EngineError(f"TensorRT plan tensor {name!r} is not float32; re-export with this version")
        self._engines.append((profile, engine, engine.create_execution_context()))

    def _load_explicit(self) -> None:
        path = self.explicit_plan
        assert path is not None
        if not path.is_file():
            raise EngineError(f"TensorRT plan {path} not found; build one with `imcsr-live export --engine tensorrt`")
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        prof = meta.get("profile")
        profile = (
            ShapeProfile(*(tuple(prof[k]) for k in ("min_hw", "opt_hw", "max_hw")))
            if prof
            else ShapeProfile((8, 8), (512, 512), (16384, 16384))
        )
        wanted = PlanSpec("", str(self.trt.__version__), self.gpu_name, self.capability, self.precision, 0, profile)
        engine = self._deserialize(path.read_bytes())
        if engine is None:
            raise EnginePlanError(incompatibility_message(path, wanted, self._logger.errors))
        self._add_engine(profile, engine)
        self.last_plan = path

    def ensure_plan(self, hw: tuple[int, int], progress: Progress | None = None) -> Path | None:
        """Load (or build, then cache) a plan covering frames of ``hw``; returns the plan file used."""
        if any(p.covers(hw) for p, _, _ in self._engines):
            return self.last_plan
        if self.explicit_plan is not None:
            p = self._engines[0][0]
            raise EngineError(
                f"TensorRT plan {self.explicit_plan} accepts frames {p.min_hw}..{p.max_hw}, not {hw}; "
                "export a plan for this size"
            )
        profile = self.profile if self.profile is not None and self.profile.covers(hw) else ShapeProfile.fixed(hw)
        if progress:
            progress(f"tensorrt: exporting ONNX ({self.precision})", 0.05)
        spec = self.spec_for(profile)
        plan_path, meta_path = plan_paths(spec, self.source.name)
        if plan_path.is_file():
            engine = self._deserialize(plan_path.read_bytes())
            if engine is not None:
                log.info("tensorrt: loaded cached plan %s", plan_path.name)
                self._add_engine(profile, engine)
                self.last_plan = plan_path
                return plan_path
            log.warning(
                "tensorrt: cached plan %s does not load here (%s); rebuilding",
                plan_path.name,
                "; ".join(self._logger.errors[-1:]) or "null engine",
            )
            plan_path.unlink(missing_ok=True)
        if progress:
            progress(f"tensorrt: building plan for {spec.describe()} (minutes; cached afterwards)", 0.1)
        tc = timing_cache_path(spec.tensorrt_version, spec.gpu_name, spec.compute_capability)
        data = build_plan(self.trt, self.onnx_path, spec, tc, progress=progress)
        atomic_write(plan_path, data)
        atomic_write(meta_path, json.dumps({**asdict(spec), "model": self.source.name}, indent=2))
        engine = self._deserialize(data)
        if engine is None:
            raise EnginePlanError(incompatibility_message(plan_path, spec, self._logger.errors))
        self._add_engine(profile, engine)
        self.last_plan = plan_path
        return plan_path

    # -- running ----------------------------------------------------------------------------------------------
    def _prepare(self, shape: tuple[int, int], progress: Progress | None) -> None:
        self.ensure_plan(shape, progress)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        return self._infer_tensor(inp).cpu().numpy()

    def _infer_tensor(self, inp: torch.Tensor) -> torch.Tensor:
        hw = (int(inp.shape[-2]), int(inp.shape[-1]))
        self.ensure_plan(hw)
        _, _, ctx = next(e for e in self._engines if e[0].covers(hw))
        inp = inp.contiguous()
        if not ctx.set_input_shape(INPUT_NAME, tuple(inp.shape)):
            raise EngineError(f"TensorRT rejected input shape {tuple(inp.shape)}")
        out_shape = tuple(ctx.get_tensor_shape(OUTPUT_NAME))
        out = torch.empty(out_shape, dtype=torch.float32, device=self.device)
        ctx.set_tensor_address(INPUT_NAME, inp.data_ptr())
        ctx.set_tensor_address(OUTPUT_NAME, out.data_ptr())
        cuda = self.device.type == "cuda"
        stream = torch.cuda.current_stream(self.device).cuda_stream if cuda else 0
        if not ctx.execute_async_v3(stream):
            raise EngineError("TensorRT execution failed; see the log for TensorRT's message")
        if cuda:
            torch.cuda.current_stream(self.device).synchronize()
        return out

    def peak_memory_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return None
        return int(torch.cuda.max_memory_allocated(self.device)) + sum(
            engine_device_memory(e) for _, e, _ in self._engines
        )
