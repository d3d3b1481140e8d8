"""Run a sentence-transformers model's transformer on OpenVINO or ONNX Runtime.

Only the transformer itself is exported: tokenisation, prompts, pooling and normalisation
stay sentence-transformers' own, so an exported model embeds exactly as the torch one
does, up to the backend's arithmetic (docs/benchmarks.md, "Embedding backends"). Exports are built
from the model already loaded (no network) and cached per user (:mod:`.cache`).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import os
import sys
import warnings
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, EmbeddingError
from ..vocabulary import BACKENDS, QUANTIZATIONS, check
from .cache import ExportCache

EXPORT_VERSION = 1  # bump when an export's contents change, so old cache entries are not used

_PACKAGES = {"openvino": "openvino", "onnx": "onnxruntime"}
_INT8_PACKAGES = {"openvino": "nncf", "onnx": "onnx"}


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _importable(package: str) -> bool:
    try:
        __import__(package)
    except ImportError:
        return False
    return True


def available(backend: str) -> bool:
    return backend == "torch" or _importable(_PACKAGES[backend])


def choose(backend: str, quantize: str, device: str) -> tuple[str, str]:
    """The (backend, quantization) to run: checked, with the defaults filled in.

    The default is OpenVINO on a CPU (the fastest here at the same quality: docs/benchmarks.md),
    torch on an accelerator or where OpenVINO is not installed.
    """
    quantize = quantize or "none"
    if backend:
        check("embed_backend", backend, BACKENDS)
    check("embed_quantize", quantize, QUANTIZATIONS)
    on_cpu = device in ("", "cpu")
    if not backend:
        if not on_cpu:
            backend = "torch"
        elif quantize == "int8":
            backend = next((b for b in ("openvino", "onnx") if available(b)), "openvino")
        else:
            backend = "openvino" if available("openvino") else "torch"
    if backend != "torch" and not on_cpu:
        raise ConfigError(f"embed_backend {backend} runs on the CPU; use embed_backend torch for device {device!r}")
    if quantize == "int8" and backend == "torch":
        # Measured: torch's dynamic int8 lost 0.019 nDCG@10 on SciFact (docs/benchmarks.md).
        raise ConfigError("embed_quantize int8 needs embed_backend onnx or openvino (torch's int8 loses quality)")
    for package in (_PACKAGES.get(backend), _INT8_PACKAGES.get(backend) if quantize == "int8" else None):
        if package and not _importable(package):
            raise ConfigError(
                f"embed_backend {backend}"
                + (" with int8" if quantize == "int8" else "")
                + f" needs the {package} package: pip install 'ragtide[fast]'"
            )
    return backend, quantize


@dataclass
class Runner:
    """The exported transformer: token embeddings for a batch of tokenised texts."""

    backend: str
    precision: str  # what the arithmetic actually runs in: fp32, bf16, int8
    inputs: tuple[str, ...]
    run: Callable[[dict[str, np.ndarray]], np.ndarray]
    key: str = ""  # the export's cache key

    def __call__(self, features: dict[str, Any]) -> np.ndarray:
        return self.run({name: features[name].numpy() for name in self.inputs})


def load(backend: str, quantize: str, model, cache: ExportCache, threads: int = 0) -> Runner:
    """Export ``model`` (a loaded SentenceTransformer) once, then open the export."""
    import torch

    transformer = model[0].auto_model.eval()
    inputs = _input_names(model, transformer)
    key = _key(backend, quantize, transformer)
    threads = threads or len(os.sched_getaffinity(0))

    def build(folder: Path) -> None:
        # Once per model and machine, and long enough (~20 s on two cores) to look like a hang.
        print(
            f"ragtide: preparing the embedding model for {backend} once (~20 s; cached in {folder.parent})",
            file=sys.stderr,
        )
        # Exporters print notices, tables and progress bars; a `--json` stdout must stay clean.
        with torch.no_grad(), warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            _EXPORTERS[backend](_wrap(transformer, inputs), _example(model, inputs), inputs, quantize, folder)

    opener = OPENERS[backend]
    folder = cache.get(key, build)
    try:
        runner = opener(folder, inputs, quantize, threads)
    except Exception:
        cache.invalidate(folder)  # whole-looking but unreadable (same sizes, wrong bytes): built again, once
        folder = cache.get(key, build)
        try:
            runner = opener(folder, inputs, quantize, threads)
        except Exception as e:
            raise EmbeddingError(f"cannot run the {backend} export of the embedding model ({folder}): {e}") from e
    runner.key = key
    return runner


def _key(backend: str, quantize: str, transformer) -> str:
    """The cache key: the weights themselves (whatever path they came from) and the export settings."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    h.update(f"{EXPORT_VERSION}:{backend}:{quantize}:{_library_version(backend)}:{torch.__version__}".encode())
    h.update(type(transformer).__name__.encode())
    for name, tensor in sorted(transformer.state_dict().items()):
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return f"{backend}-{quantize}-{h.hexdigest()}"


def _library_version(backend: str) -> str:
    if backend == "openvino":
        import openvino

        return openvino.__version__
    return ""  # an ONNX file does not depend on the runtime that will read it


def _input_names(model, transformer) -> tuple[str, ...]:
    """The tokenizer outputs the transformer takes, in its forward's order."""
    features = model.preprocess(["x"])
    params = inspect.signature(transformer.forward).parameters
    return tuple(name for name in params if name in features and hasattr(features[name], "numpy"))


def _example(model, inputs: tuple[str, ...]) -> tuple:
    features = model.preprocess(["an example to trace", "two"])
    return tuple(features[name] for name in inputs)


def _wrap(transformer, inputs: tuple[str, ...]):
    """The transformer as a module taking its inputs positionally (tracers need that) and
    returning token embeddings."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *args):
            return self.transformer(**dict(zip(inputs, args)), return_dict=True).last_hidden_state

    return Wrapped().eval()


# -- OpenVINO ---------------------------------------------------------------------------


def _export_openvino(module, example: tuple, inputs: tuple[str, ...], quantize: str, folder: Path) -> None:
    import openvino as ov

    converted = ov.convert_model(module, example_input=example)
    for port, name in zip(converted.inputs, inputs):
        port.get_tensor().set_names({name})
    if quantize == "int8":
        import nncf

        nncf.set_log_level(logging.ERROR)
        converted = nncf.compress_weights(converted)  # int8 weights, per channel
    ov.save_model(converted, folder / "model.xml", compress_to_fp16=False)


def _open_openvino(folder: Path, inputs: tuple[str, ...], quantize: str, threads: int) -> Runner:
    import openvino as ov

    compiled = ov.Core().compile_model(str(folder / "model.xml"), "CPU", {"INFERENCE_NUM_THREADS": threads})
    hint = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # bf16 only where the CPU has it
    precision = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(hint, hint)
    if quantize == "int8":
        precision = f"int8 weights, {precision}"
    output = compiled.output(0)

    def run(features: dict[str, np.ndarray]) -> np.ndarray:
        # One request per call: requests are not shared between threads.
        return compiled.create_infer_request().infer(features)[output]

    return Runner("openvino", precision, inputs, run)


# -- ONNX Runtime -----------------------------------------------------------------------


def _export_onnx(module, example: tuple, inputs: tuple[str, ...], quantize: str, folder: Path) -> None:
    import torch

    plain = folder / ("fp32.onnx" if quantize == "int8" else "model.onnx")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*inputs, "token_embeddings")}
    torch.onnx.export(
        module,
        example,
        str(plain),
        input_names=list(inputs),
        output_names=["token_embeddings"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Per-channel signed weights agreed best with fp32 here (cosine 0.992); without VNNI,
        # ONNX Runtime's u8s8 kernels can saturate unless the range is reduced.
        vnni = not cpu_flags().isdisjoint({"avx512_vnni", "avx_vnni"})
        quantize_dynamic(
            str(plain), str(folder / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True, reduce_range=not vnni
        )
        plain.unlink()


def _open_onnx(folder: Path, inputs: tuple[str, ...], quantize: str, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    def run(features: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(None, {name: value.astype(np.int64, copy=False) for name, value in features.items()})[0]

    return Runner("onnx", "int8" if quantize == "int8" else "fp32", inputs, run)


_EXPORTERS = {"openvino": _export_openvino, "onnx": _export_onnx}
OPENERS = {"openvino": _open_openvino, "onnx": _open_onnx}
