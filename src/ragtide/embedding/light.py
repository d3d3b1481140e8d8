"""Start an exported model without torch or sentence-transformers.

Importing sentence-transformers (with torch, transformers, scikit-learn, pandas and SymPy
behind it) takes 11 s on this machine, most of a CLI command's time, although an exported
model needs none of it: only the tokenizer, the export and the pooling. So the first
process that exports a model also writes a *start recipe* beside the export: the
tokenizer as JSON, the lengths, the pooling, the export's key. Later processes that find
a recipe for the same model files start from it in about a second.

A recipe is written only after it was checked against sentence-transformers on probe
texts: the same token ids and the same vectors (to float rounding). A model whose
preprocessing or pooling the recipe cannot reproduce (prompts, other pooling modes,
non-text inputs) simply gets none and loads the usual way.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from .cache import ExportCache

RECIPE = "recipe.json"
_COLUMNS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
TOKENIZER = "tokenizer.json"
# Texts a recipe must embed exactly as sentence-transformers does before it is written:
# spaces at the ends, accents, control characters, empty, and longer than the model's limit.
PROBES = (
    "  spaces at both ends  ",
    "Ünïcödé — “quotes”\ttab\nnew line",
    "",
    "a",
    "The tide tables list 4 high waters for March 3rd, 2021 ($1,234.56)." * 40,
)
_PACKAGES = ("ragtide", "sentence-transformers", "transformers", "torch", "tokenizers", "openvino", "onnxruntime")


@dataclass(frozen=True)
class Recipe:
    export: str  # the export's cache key
    inputs: tuple[str, ...]  # the export's inputs, from the tokenizer's outputs
    max_length: int  # tokens per text, special tokens included (longer texts are cut)
    max_tokens: int  # chunk limit: max_length without the special tokens
    dim: int
    pad_id: int
    pad_token: str
    pooling: str  # "mean" or "cls"


def fingerprint(model_dir: str, backend: str, quantize: str) -> str | None:
    """The start recipe's key: the model's files as they are on disk (names, sizes, times, not contents:
    reading 90 MB would cost what this saves) and the libraries that built the export.
    None for a model that is not a local folder."""
    root = Path(model_dir)
    if not root.is_dir():
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{backend}:{quantize}:{root.resolve()}".encode())
    for package in _PACKAGES:
        try:
            h.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{package}=none".encode())
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            stat = path.stat()
            h.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"start-{h.hexdigest()}"


class LightModel:
    """An exported transformer behind the model's own tokenizer, pooled in numpy."""

    def __init__(self, recipe: Recipe, tokenizer_json: str, run, precision: str = "fp32") -> None:
        from tokenizers import Tokenizer

        self.recipe = recipe
        self.precision = precision
        self.tokenizer_json = tokenizer_json
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.enable_truncation(max_length=recipe.max_length)
        self._tokenizer.enable_padding(pad_id=recipe.pad_id, pad_token=recipe.pad_token)
        self._run = run

    def features(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """What a Hugging Face fast tokenizer returns for ``texts``, padded, as int64 arrays."""
        encodings = self._tokenizer.encode_batch(list(texts))
        return {
            name: np.array([getattr(e, attribute) for e in encodings], dtype=np.int64)
            for name, attribute in _COLUMNS.items()
        }

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        features = self.features(texts)
        tokens = self._run({name: features[name] for name in self.recipe.inputs}).astype(np.float32, copy=False)
        return _normalize(_pool(tokens, features["attention_mask"], self.recipe.pooling))


def _pool(tokens: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "cls":
        return tokens[:, 0]
    weights = mask[..., None].astype(np.float32)
    return (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def open_recipe(cache: ExportCache, key: str | None, opener, quantize: str, threads: int) -> LightModel | None:
    """The model a whole recipe and export start, or None (then load the usual way)."""
    if key is None:
        return None
    folder = _starts(cache).path(key)
    if not ExportCache.is_whole(folder):
        return None
    try:
        fields = json.loads((folder / RECIPE).read_text())
        recipe = Recipe(**{**fields, "inputs": tuple(fields["inputs"])})
        export = cache.path(recipe.export)
        if not cache.is_whole(export):
            return None
        runner = opener(export, recipe.inputs, quantize, threads or len(os.sched_getaffinity(0)))
        return LightModel(recipe, (folder / TOKENIZER).read_text(encoding="utf-8"), runner.run, runner.precision)
    except Exception:  # noqa: BLE001 -- a stale or damaged recipe: the usual load rebuilds what it needs
        return None


def _starts(cache: ExportCache) -> ExportCache:
    """The recipes, beside the exports they start."""
    return ExportCache(cache.root, "starts")


def write_recipe(cache: ExportCache, key: str | None, model, runner, max_tokens: int) -> None:
    """Check a recipe for ``model`` (a loaded SentenceTransformer) against it on the probe
    texts and, if it reproduces them, keep it under ``key``. Never fails: without a recipe
    the next start is only slower."""
    starts = _starts(cache)
    if key is None or starts.is_whole(starts.path(key)):
        return
    try:
        made = _recipe(model, runner, max_tokens)
        if made is None:
            return
        model_light, expected = made
        if not np.allclose(model_light.encode(PROBES), expected, atol=1e-5):
            return

        def build(folder: Path) -> None:
            (folder / TOKENIZER).write_text(model_light.tokenizer_json, encoding="utf-8")
            (folder / RECIPE).write_text(json.dumps(asdict(model_light.recipe)))

        starts.get(key, build)
    except Exception:  # noqa: BLE001 -- see above
        pass


def _recipe(model, runner, max_tokens: int):
    """A light model for ``model`` and the vectors sentence-transformers gives the probes,
    or None where a recipe cannot describe it."""
    import torch

    modules = [type(m).__name__ for m in model]
    if modules[:2] != ["Transformer", "Pooling"] or any(m != "Normalize" for m in modules[2:]):
        return None
    if any(model.prompts.values() if model.prompts else ()):
        return None
    pooling = model[1].get_config_dict()
    if pooling.get("pooling_mode") not in ("mean", "cls"):
        return None
    tokenizer = model.tokenizer
    recipe = Recipe(
        export=runner.key,
        inputs=tuple(runner.inputs),
        max_length=int(model.max_seq_length),
        max_tokens=max_tokens,
        dim=int(model.get_embedding_dimension()),
        pad_id=int(tokenizer.pad_token_id),
        pad_token=str(tokenizer.pad_token),
        pooling=pooling["pooling_mode"],
    )
    light = LightModel(recipe, tokenizer.backend_tokenizer.to_str(), runner.run)
    if not set(recipe.inputs) <= set(_COLUMNS):
        return None
    features = model.preprocess(list(PROBES))
    mine = light.features(PROBES)
    compared = {*recipe.inputs, "attention_mask"}  # the mask also weighs the pooling
    if any(name not in features or not np.array_equal(mine[name], features[name].numpy()) for name in compared):
        return None
    with torch.inference_mode():
        features["token_embeddings"] = torch.from_numpy(runner(features))
        for module in list(model)[1:]:
            features = module(features)
        expected = torch.nn.functional.normalize(features["sentence_embedding"].float(), dim=1).numpy()
    return light, expected
