"""A stand-in for the ``tensorrt`` Python module (which cannot be installed here), mirroring the calls our engine
makes under TensorRT 10 and 11. The boundary is faked; everything around it (export, cache, plan files, pointers,
shape checks) is real: "executing" a plan runs the embedded ONNX graph in onnxruntime on the tensor addresses.

A fake plan is ``MAGIC + header JSON + NUL + ONNX bytes``; like the real runtime, deserialising a plan built by
another version logs an error and returns None.

Enum values and which members exist are copied from the real bindings, not memory: ``tensorrt_cu12_bindings
10.16.1.11`` and ``tensorrt_cu13_bindings 11.4.0.106`` (cp311 manylinux_2_28 wheels from PyPI; they ship no .pyi
stubs, so their ``tensorrt.so`` was imported against stub ``libnvinfer``/``libnvonnxparser`` libraries and the
``__members__`` of each enum were read). Every 10.x fake uses the 10.16 values, every 11.x fake the 11.4 values.

The fake ONNX parser rejects what the real one (onnx-tensorrt) would reject for our graphs: nodes whose operator
has no importer (the real parser then tries a plugin of that name and fails with UNSUPPORTED_NODE); the supported
operators are the "Y" rows of onnx-tensorrt docs/operators.md for TensorRT 10.15. It also refuses an ai.onnx opset
above the documented range ("opset 9 to opset 24" for 10.15, 20 for 10.0), which the real parser does not check
itself (it only warns below 7): we keep our exports inside the documented range, and this makes a test notice.
"""

from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import json
import types
import warnings

import numpy as np

MAGIC = b"FAKETRTPLAN\0"

# -- real enum values (see the module docstring for where they come from) -------------------------------------
NETWORK_FLAGS_10 = {
    "EXPLICIT_BATCH": 0,
    "STRONGLY_TYPED": 1,
    "PREFER_JIT_PYTHON_PLUGINS": 2,
    "PREFER_AOT_PYTHON_PLUGINS": 3,
}
NETWORK_FLAGS_11 = {"STRONGLY_TYPED": 0, "PREFER_JIT_PYTHON_PLUGINS": 1, "PREFER_AOT_PYTHON_PLUGINS": 2}
BUILDER_FLAGS_10 = {
    "FP16": 0, "INT8": 1, "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5, "TF32": 6,
    "SPARSE_WEIGHTS": 7, "SAFETY_SCOPE": 8, "OBEY_PRECISION_CONSTRAINTS": 9, "PREFER_PRECISION_CONSTRAINTS": 10,
    "DIRECT_IO": 11, "REJECT_EMPTY_ALGORITHMS": 12, "VERSION_COMPATIBLE": 13, "EXCLUDE_LEAN_RUNTIME": 14, "FP8": 15,
    "ERROR_ON_TIMING_CACHE_MISS": 16, "BF16": 17, "DISABLE_COMPILATION_CACHE": 18, "WEIGHTLESS": 19,
    "STRIP_PLAN": 19, "REFIT_IDENTICAL": 20, "WEIGHT_STREAMING": 21, "INT4": 22, "REFIT_INDIVIDUAL": 23,
    "STRICT_NANS": 24, "MONITOR_MEMORY": 25, "FP4": 26, "EDITABLE_TIMING_CACHE": 27, "DISTRIBUTIVE_INDEPENDENCE": 28,
}  # fmt: skip
BUILDER_FLAGS_11 = {  # no FP16, BF16, INT8, FP8, INT4, FP4 or precision-constraint flags: strongly typed only
    "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5, "TF32": 6, "SPARSE_WEIGHTS": 7,
    "SAFETY_SCOPE": 8, "DIRECT_IO": 11, "VERSION_COMPATIBLE": 12, "EXCLUDE_LEAN_RUNTIME": 13,
    "ERROR_ON_TIMING_CACHE_MISS": 15, "DISABLE_COMPILATION_CACHE": 17, "STRIP_PLAN": 18, "REFIT_IDENTICAL": 19,
    "WEIGHT_STREAMING": 20, "REFIT_INDIVIDUAL": 22, "STRICT_NANS": 23, "MONITOR_MEMORY": 24,
    "EDITABLE_TIMING_CACHE": 26, "DISTRIBUTIVE_INDEPENDENCE": 27,
}  # fmt: skip
DATA_TYPES = {  # the same in 10.16 and 11.4
    "FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "FP8": 6, "BF16": 7, "INT64": 8, "INT4": 9,
    "FP4": 10, "E8M0": 11,
}  # fmt: skip

#: ONNX operators with an importer in TensorRT 10.15's parser ("Y" in onnx-tensorrt docs/operators.md).
SUPPORTED_OPS = frozenset(
    """Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
    BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
    DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
    GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample
    GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If ImageScaler
    InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
    LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression
    NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
    RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
    ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RMSNormalization RNN RoiAlign
    RotaryEmbedding Round STFT ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin
    Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter
    ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor""".split()
)


def documented_max_opset(version: str) -> int:
    """Highest ai.onnx opset the parser of TensorRT ``version`` documents (operators.md header)."""
    major, minor = (int(v) for v in version.split(".")[:2])
    return 24 if (major, minor) >= (10, 15) else 20


def make_fake_tensorrt(version: str = "10.16.1") -> types.ModuleType:
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.stats = {"builds": 0, "deserialize": 0, "timing_cache_in": [], "v1_memory_reads": 0}

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
    trt.DataType = enum.IntEnum("DataType", DATA_TYPES)
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})
    # 11 keeps STRONGLY_TYPED (value 0): "Deprecated in TensorRT 11.0. Strongly typed mode is always enabled. This
    # flag is retained for API compatibility but is ignored."
    flags = NETWORK_FLAGS_10 if major < 11 else NETWORK_FLAGS_11
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", flags)
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", BUILDER_FLAGS_10 if major < 11 else BUILDER_FLAGS_11)
    max_opset = documented_max_opset(version)

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
                model = onnx.load_from_string(data)
                onnx.checker.check_model(model)
            except Exception as exc:
                self.errors.append(f"ONNX check failed: {exc}")
                return False
            for imp in model.opset_import:
                if imp.domain in ("", "ai.onnx") and imp.version > max_opset:
                    self.errors.append(
                        f"opset {imp.version} is outside the range TensorRT {version} documents (9..{max_opset})"
                    )
            for i, node in enumerate(model.graph.node):
                if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
                    self.errors.append(
                        f"In node {i} with name: {node.name} and operator: {node.op_type} "
                        "(importFallbackPluginImporter): UNSUPPORTED_NODE: Assertion failed: creator && "
                        '"Plugin not found, are the plugin name, version, and namespace correct?"'
                    )
            if self.errors:
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
            # 11: always strongly typed (its STRONGLY_TYPED flag is ignored); 10: only with the flag's bit set
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

        if major < 11:  # 11.4 has only device_memory_size_v2

            @property
            def device_memory_size(self) -> int:
                trt.stats["v1_memory_reads"] += 1
                msg = "Deprecated in TensorRT 10.1. Superseded by device_memory_size_v2"
                warnings.warn(msg, DeprecationWarning, stacklevel=2)
                return 1 << 20

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
