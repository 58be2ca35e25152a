"""Query embeddings for the knn arms, computed in-process with onnxruntime (no torch, no server).

The model is a sentence-transformers export (all-MiniLM-L6-v2 by default): the ONNX graph gives
token states, and the sentence embedding is their mean over the attention mask, L2-normalised,
exactly as the model's ``1_Pooling`` config says. Normalised vectors let the knn index use
cosine or inner product interchangeably.

Queries repeat a lot, so single embeddings are cached; the async path runs misses on one worker
thread of its own, so the event loop never waits on the model and ONNX never competes with
itself for the few cores a proxy host has.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from ltrr.bandit.errors import LtrrError

__all__ = ["EmbedStats", "Embedder", "EmbedderError", "default_model_dir"]

MODEL_DIR_ENV = "LTRR_MODEL_DIR"
TOKENIZER_FILE = "tokenizer.json"
MODEL_FILE = "model.onnx"
# What a BERT-style encoder may ask for; anything else means the export is not one we understand.
_KNOWN_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids"})
_REQUIRED_INPUTS = frozenset({"input_ids", "attention_mask"})
_HIDDEN_STATE_OUTPUT = "last_hidden_state"


class EmbedderError(LtrrError):
    """The model folder cannot be used; the message names the folder or file at fault."""


class EmbedStats(NamedTuple):
    hits: int
    misses: int


def default_model_dir() -> Path | None:
    """The model comes from configuration only: package code never guesses a path on disk."""
    value = os.environ.get(MODEL_DIR_ENV)
    return Path(value) if value else None


class Embedder:
    """Turns text into unit-length float32 vectors; safe to share between threads."""

    def __init__(
        self,
        model_dir: Path,
        *,
        max_length: int = 256,
        cache_size: int = 4096,
        threads: int = 1,
    ) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [CLS] and [SEP], not {max_length}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be 0 (no cache) or more, not {cache_size}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.model_dir = Path(model_dir)
        self.max_length = max_length
        tokenizer_path = _model_file(self.model_dir, TOKENIZER_FILE)
        model_path = _model_file(self.model_dir, MODEL_FILE)
        self._tokenizer = _load_tokenizer(tokenizer_path, max_length)
        self._session = _load_session(model_path, threads)
        self._input_names, self._output_name = _check_signature(self._session, model_path)
        self._cache: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltrr-embed")
        # A probe both learns the width when the export leaves it symbolic and pays onnxruntime's
        # first-run setup at load time rather than on the first user's query.
        self._dimensions = int(self._run(["probe"]).shape[1])

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def stats(self) -> EmbedStats:
        with self._lock:
            return EmbedStats(hits=self._hits, misses=self._misses)

    def embed_batch(self, texts: Sequence[str], *, batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Uncached, for bulk indexing; chunks bound memory, since each pads to its longest text."""
        if isinstance(texts, str):
            raise TypeError("embed_batch takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        # Batch texts of similar length together: each batch pads to its longest text, and
        # attention costs grow with that length, so mixing a title with an abstract wastes most
        # of the work. Results go back into the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self._dimensions), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            out[chosen] = self._run([texts[i] for i in chosen])
        return out

    def embed(self, text: str) -> tuple[float, ...]:
        """Cached: the tuple is shared between callers, so it must not be mutable."""
        cached = self._lookup(text)
        if cached is not None:
            return cached
        vector = tuple(self._run([text])[0].tolist())
        with self._lock:
            self._misses += 1
            if self._cache_size:
                # Another thread may have raced us here; keep its tuple so identity stays stable.
                vector = self._cache.setdefault(text, vector)
                self._cache.move_to_end(text)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector

    async def aembed(self, text: str) -> tuple[float, ...]:
        """A hit answers inline; a miss waits on the embedder's own single worker thread."""
        cached = self._lookup(text)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        # ``embed`` looks the cache up again: a duplicate query queued behind the first becomes
        # a hit instead of a second model run.
        return await loop.run_in_executor(self._pool, self.embed, text)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _lookup(self, text: str) -> tuple[float, ...] | None:
        """Counts hits only; the miss is counted by whoever computes, so each call counts once."""
        with self._lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
                self._hits += 1
            return vector

    def _run(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(list(texts))
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feed = {name: arrays[name] for name in self._input_names}
        hidden = np.asarray(self._session.run([self._output_name], feed)[0], dtype=np.float32)
        return _mean_pool_normalise(hidden, arrays["attention_mask"])


def _mean_pool_normalise(
    hidden: npt.NDArray[np.float32], attention_mask: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """Padding must not dilute the mean, and a zero vector must not divide by zero."""
    mask = attention_mask.astype(np.float32)[:, :, None]
    summed = (hidden * mask).sum(axis=1)
    counts = np.clip(mask.sum(axis=1), 1e-9, None)
    mean = summed / counts
    norms = np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)
    result: npt.NDArray[np.float32] = (mean / norms).astype(np.float32, copy=False)
    return result


def _model_file(model_dir: Path, name: str) -> Path:
    if not model_dir.exists():
        raise EmbedderError(
            f"model folder {model_dir} does not exist (set {MODEL_DIR_ENV} to the folder that "
            f"holds {TOKENIZER_FILE} and {MODEL_FILE})"
        )
    if not model_dir.is_dir():
        raise EmbedderError(f"model folder {model_dir} is not a folder")
    path = model_dir / name
    if not path.is_file():
        raise EmbedderError(f"model folder {model_dir} has no {name}")
    return path


def _load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception for unreadable or bad JSON
        raise EmbedderError(f"cannot load {path.name} from {path.parent}: {exc}") from exc
    # The shipped tokenizer.json pads every input to a fixed 128: pad to the batch's longest
    # instead, and truncate where the model was trained to stop.
    padding: dict[str, Any] = tokenizer.padding or {}
    tokenizer.enable_padding(
        pad_id=padding.get("pad_id", 0),
        pad_type_id=padding.get("pad_type_id", 0),
        pad_token=padding.get("pad_token", "[PAD]"),
        length=None,
    )
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def _load_session(path: Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning workers would burn the cores the proxy's event loop needs between queries.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors are pybind classes with no common base
        raise EmbedderError(f"cannot load {path.name} from {path.parent}: {exc}") from exc


def _check_signature(session: Any, model_path: Path) -> tuple[tuple[str, ...], str]:
    """Fail at load, with the names, rather than on the first query."""
    inputs = tuple(str(i.name) for i in session.get_inputs())
    unknown = sorted(set(inputs) - _KNOWN_INPUTS)
    missing = sorted(_REQUIRED_INPUTS - set(inputs))
    if unknown or missing:
        raise EmbedderError(
            f"{model_path} is not a BERT-style encoder: it takes {list(inputs)}"
            f" (unknown {unknown}, missing {missing})"
        )
    outputs = {str(o.name): o for o in session.get_outputs()}
    output = outputs.get(_HIDDEN_STATE_OUTPUT) or next(iter(outputs.values()), None)
    if output is None or len(output.shape) != 3:
        raise EmbedderError(
            f"{model_path} has no [batch, seq, dim] output to pool (outputs: {sorted(outputs)})"
        )
    return inputs, str(output.name)
