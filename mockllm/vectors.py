"""Embedding vectors: text → a deterministic, similarity-preserving unit vector. Pure: no I/O.

A vector is *signed feature hashing* of the text's features: the 3-grams of each word of the
lowercased text (with a space either side, so word edges are grams too) and the words
themselves, each hashed with CRC-32 to a position (the low 31 bits modulo the dimension) and
a sign (the top bit), added up, then L2-normalised. Texts that share words and spellings share
features, so ``cosine("Paris weather", "weather in Paris")`` is far above ``cosine("Paris
weather", "tax law")``: a retrieval test means something (a hash of the whole text would make
every pair equally far). CRC-32, not ``hash()``: the same vector in every process and release.

Deliberate differences from a real model: the vectors know spelling, not meaning ("car" and
"automobile" are unrelated), and a short text's vector is mostly zeros (one non-zero per
feature). A text without features (empty, or only whitespace) gets the vector of one fixed
feature, so every text has a unit vector.

A scenario may pin vectors (:class:`Embeddings`, the scenario's ``embeddings`` key); they are
sent as written.
"""

from __future__ import annotations

import math
import sys
import zlib
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Vector sizes by model name (a prefix of it): OpenAI's and Google's documented sizes.
MODEL_DIMENSIONS: tuple[tuple[str, int], ...] = (
    ("text-embedding-3-large", 3072),
    ("text-embedding-3-small", 1536),
    ("text-embedding-ada-002", 1536),
    ("text-embedding-004", 768),
    ("text-embedding-005", 768),
    ("gemini-embedding", 768),
    ("embedding-001", 768),
)
#: The size for any other model (and for Ollama's, whose sizes vary by model).
DEFAULT_DIMENSIONS = 1536
#: The largest vector mockllm makes (the real APIs' largest is 3,072).
MAX_DIMENSIONS = 8192

#: The feature of a text that has none.
_EMPTY = b"\x00empty"


@dataclass(frozen=True)
class Embeddings:
    """A scenario's ``embeddings``: the size of every vector it answers with (``None``: the
    request's or the model's), and vectors pinned for given input texts (exact match)."""

    dimensions: int | None = None
    vectors: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


def dimensions_for(model: str) -> int:
    """The vector size a model name implies: that of the first known name it contains (so an
    Azure deployment ``prod-text-embedding-3-large`` is 3,072), else :data:`DEFAULT_DIMENSIONS`."""
    name = model.lower()
    for known, size in MODEL_DIMENSIONS:
        if known in name:
            return size
    return DEFAULT_DIMENSIONS


def features(text: str) -> list[bytes]:
    """The features of ``text``: the 3-grams of each word (lowercased, a space either side) and
    the word itself. Grams across two words are left out: they made word order count, and
    "weather in Paris" should be close to "Paris weather"."""
    found = []
    for word in text.lower().split():
        padded = f" {word} ".encode("utf-8", "surrogatepass")
        # grams of UTF-8 bytes, not characters: as good for similarity, and no slicing of str
        found += [padded[i : i + 3] for i in range(len(padded) - 2)]
        found.append(b"w:" + padded)
    return found or [_EMPTY]


def vector(text: str, dimensions: int) -> list[float]:
    """The unit vector of ``text`` in ``dimensions`` dimensions, each value a float32 (so the
    ``float`` and ``base64`` encodings of it are the same numbers)."""
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise ValueError(f"dimensions must be 1 to {MAX_DIMENSIONS}, not {dimensions}")
    sparse: dict[int, float] = {}
    crc = zlib.crc32
    for feature in features(text):
        h = crc(feature)
        index = (h & 0x7FFFFFFF) % dimensions
        sparse[index] = sparse.get(index, 0.0) + (-1.0 if h >> 31 else 1.0)
    norm = math.hypot(*sparse.values())
    if norm == 0.0:  # the features cancelled out (possible with few dimensions)
        sparse, norm = {crc(_EMPTY) % dimensions: 1.0}, 1.0
    values = [0.0] * dimensions
    scaled = array("f", [v / norm for v in sparse.values()]).tolist()  # rounded to float32
    for index, value in zip(sparse, scaled, strict=True):
        values[index] = value
    return values


def to_float32_bytes(values: Sequence[float]) -> bytes:
    """``values`` as little-endian float32, what ``encoding_format: base64`` encodes."""
    packed = array("f", values)
    if packed.itemsize != 4:  # pragma: no cover - every platform CPython runs on has a 4-byte float
        raise RuntimeError("array('f') is not float32 here")
    if sys.byteorder == "big":  # pragma: no cover - array's floats are the machine's own order
        packed.byteswap()
    return packed.tobytes()


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine similarity of two vectors of one size."""
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    return dot / ((math.hypot(*a) * math.hypot(*b)) or 1.0)


def pinned_embeddings(spec: Any, report: Callable[..., None]) -> Embeddings | None:
    """A scenario's ``embeddings`` (already checked against the schema) as :class:`Embeddings`;
    ``None``, with the problems reported at their keys, if a pinned vector has the wrong size."""
    if spec is None:
        return None
    vectors: dict[str, tuple[float, ...]] = {}
    size = spec.get("dimensions")
    ok = True
    for text, values in spec.get("vectors", {}).items():
        size = len(values) if size is None else size
        if len(values) != size:
            why = "dimensions says" if "dimensions" in spec else "the first pinned vector has"
            message = f"a vector of {len(values)} numbers, but {why} {size}"
            report(("embeddings", "vectors", text), message)
            ok = False
        vectors[str(text)] = tuple(float(v) for v in values)
    return Embeddings(size, vectors) if ok else None
