"""A stand-in for the ``tensorrt`` Python module (which cannot be installed here), mirroring the calls our engine
makes under TensorRT 10 and 11. The boundary is faked; everything around it (export, cache, plan files, pointers,
shape checks) is real: "executing" a plan runs the embedded ONNX graph in onnxruntime on the tensor addresses.

A fake plan is ``MAGIC + header JSON + NUL + ONNX bytes``; like the real runtime, deserialising a plan built by
another version logs an error and returns None.
"""

from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import json
import types

import numpy as np

MAGIC = b"FAKETRTPLAN\0"


def make_fake_tensorrt(version: str = "10.7.0") -> types.ModuleType:
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.stats = {"builds": 0, "deserialize": 0, "timing_cache_in": []}

    class _Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    Severity = _Severity

    class ILogger:
        Severity = _Severity

        def __init__(self) -> None:
            pass

        def log(self, severity: Severity, msg: str) -> None:  # pragma: no cover - overridden
            pass

    trt.ILogger = ILogger

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    trt.IProgressMonitor = IProgressMonitor
    trt.DataType = enum.IntEnum("DataType", {"FLOAT": 0, "HALF": 1, "BF16": 7})
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})
    if major < 11:
        trt.NetworkDefinitionCreationFlag = enum.IntEnum(
            "NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 5}
        )
        trt.BuilderFlag = enum.IntEnum("BuilderFlag", {"FP16": 0, "BF16": 1, "INT8": 2})
    else:  # TensorRT 11 in our fake: strong typing is the only mode; no FP16/BF16 builder flags
        trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", {"RESERVED": 0})
        trt.BuilderFlag = enum.IntEnum("BuilderFlag", {"INT8": 2})

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.onnx: bytes | None = None

    class OnnxParser:
        def __init__(self, network: Network, logger: ILogger) -> None:
            self.network, self.errors = network, []

        def parse_from_file(self, path: str) -> bool:
            import onnx

            data = open(path, "rb").read()
            try:
                onnx.checker.check_model(onnx.load_from_string(data))
            except Exception as exc:
                self.errors.append(f"ONNX check failed: {exc}")
                return False
            self.network.onnx = data
            return True

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> str:
            return self.errors[i]

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple] = {}

        def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class HostMemory(bytes):
        pass

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.entries = json.loads(data.decode()) if data else {"version": version, "n": 0}

        def serialize(self) -> HostMemory:
            return HostMemory(json.dumps(self.entries).encode())

    class Config:
        def __init__(self) -> None:
            self.profiles: list[Profile] = []
            self.pool: dict[int, int] = {}
            self.cache: TimingCache | None = None
            self.progress_monitor: IProgressMonitor | None = None

        def set_memory_pool_limit(self, pool: int, size: int) -> None:
            self.pool[int(pool)] = size

        def add_optimization_profile(self, p: Profile) -> int:
            self.profiles.append(p)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache:
            trt.stats["timing_cache_in"].append(bytes(data))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            if cache.entries.get("version") != version and not ignore_mismatch:
                return False
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            assert self.cache is not None
            return self.cache

    class Builder:
        def __init__(self, logger: ILogger) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> HostMemory | None:
            strongly = major >= 11 or bool(network.flags & (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
            if network.onnx is None or not config.profiles or not strongly:
                self.logger.log(Severity.ERROR, "network not parsed, no profile, or not strongly typed")
                return None
            trt.stats["builds"] += 1
            mon = config.progress_monitor
            if mon is not None:  # the call pattern of the real builder: nested phases with steps
                mon.phase_start("Building engine", None, 2)
                mon.phase_start("Tactic selection", "Building engine", 3)
                for i in range(3):
                    assert mon.step_complete("Tactic selection", i) is True
                mon.phase_finish("Tactic selection")
                mon.step_complete("Building engine", 0)
                mon.step_complete("Building engine", 1)
                mon.phase_finish("Building engine")
            if config.cache is not None:
                config.cache.entries["n"] += 1
            header = {"version": version, "shapes": config.profiles[0].shapes}
            return HostMemory(MAGIC + json.dumps(header).encode() + b"\0" + network.onnx)

    class Context:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple] = {}
            self.addresses: dict[str, int] = {}

        def set_input_shape(self, name: str, shape: tuple) -> bool:
            lo, _, hi = self.engine.shapes[name]
            if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
                return False
            self.shapes[name] = tuple(shape)
            out = self.engine.session.get_outputs()[0]
            c = out.shape[1]
            self.shapes[out.name] = (shape[0], c, shape[2], shape[3])
            return True

        def get_tensor_shape(self, name: str) -> tuple:
            return self.shapes[name]

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addresses[name] = int(ptr)
            return True

        def execute_async_v3(self, stream: int) -> bool:
            inp = self.engine.session.get_inputs()[0].name
            out = self.engine.session.get_outputs()[0].name

            def view(name: str) -> np.ndarray:
                shape = self.shapes[name]
                buf = (ctypes.c_float * int(np.prod(shape))).from_address(self.addresses[name])
                return np.ctypeslib.as_array(buf).reshape(shape)

            view(out)[...] = self.engine.session.run(None, {inp: view(inp).copy()})[0]
            return True

    class Engine:
        def __init__(self, header: dict, onnx_bytes: bytes) -> None:
            import onnxruntime as ort

            self.shapes = {k: tuple(tuple(s) for s in v) for k, v in header["shapes"].items()}
            self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
            self.names = [self.session.get_inputs()[0].name, self.session.get_outputs()[0].name]
            self.device_memory_size_v2 = 1 << 20

        @property
        def num_io_tensors(self) -> int:
            return 2

        def get_tensor_name(self, i: int) -> str:
            return self.names[i]

        def get_tensor_dtype(self, name: str) -> int:
            return trt.DataType.FLOAT

        def get_tensor_mode(self, name: str) -> int:
            return trt.TensorIOMode.INPUT if name == self.names[0] else trt.TensorIOMode.OUTPUT

        def create_execution_context(self) -> Context:
            return Context(self)

    class Runtime:
        def __init__(self, logger: ILogger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            trt.stats["deserialize"] += 1
            data = bytes(data)
            if not data.startswith(MAGIC) or b"\0" not in data[len(MAGIC) :]:
                self.logger.log(Severity.ERROR, "IRuntime::deserializeCudaEngine: Error Code 1: Serialization (magic)")
                return None
            head, onnx_bytes = data[len(MAGIC) :].split(b"\0", 1)
            header = json.loads(head)
            if header["version"] != version:
                self.logger.log(
                    Severity.ERROR,
                    "IRuntime::deserializeCudaEngine: Error Code 1: Serialization (Serialization assertion "
                    f"plan built with TensorRT {header['version']}, this is {version})",
                )
                return None
            return Engine(header, onnx_bytes)

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt
