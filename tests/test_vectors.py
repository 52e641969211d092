"""The embedding vectors (mockllm/vectors.py) and the scenario's ``embeddings`` key."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockllm import load_scenarios
from mockllm.errors import ScenarioError
from mockllm.vectors import (
    DEFAULT_DIMENSIONS,
    MAX_DIMENSIONS,
    Embeddings,
    cosine,
    dimensions_for,
    features,
    to_float32_bytes,
    vector,
)


def test_the_same_text_gives_the_same_vector_in_another_process() -> None:
    here = vector("The quick brown fox", 64)
    code = "from mockllm.vectors import vector; print(vector('The quick brown fox', 64))"
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "7"}
    ).stdout
    assert there.strip() == str(here)
    assert vector("The quick brown fox", 64) == here


@pytest.mark.parametrize("dimensions", [8, 64, 768, 1536, 3072])
def test_vectors_have_unit_length_and_the_asked_size(dimensions: int) -> None:
    for text in ("Paris weather", "", "   ", "é", "a " * 5000):
        values = vector(text, dimensions)
        assert len(values) == dimensions
        assert math.hypot(*values) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dimensions", [64, 768, 1536, 3072])
def test_similar_texts_are_closer_than_unrelated_ones(dimensions: int) -> None:
    paris = vector("Paris weather", dimensions)
    assert cosine(paris, vector("weather in Paris", dimensions)) > 0.8
    assert abs(cosine(paris, vector("tax law", dimensions))) < 0.2
    assert cosine(paris, vector("weather in Paris", dimensions)) > cosine(
        paris, vector("tax law", dimensions)
    )


def test_case_and_spacing_do_not_matter_but_words_do() -> None:
    assert vector("Paris  Weather\n", 256) == vector("paris weather", 256)
    assert vector("paris weather", 256) != vector("paris whether", 256)


def test_features_are_each_words_3_grams_and_the_word() -> None:
    assert features("Hi yo") == [b" hi", b"hi ", b"w: hi ", b" yo", b"yo ", b"w: yo "]
    assert features("  ") == [b"\x00empty"]


def test_values_are_float32_so_base64_gives_the_same_numbers() -> None:
    values = vector("Paris weather", 32)
    packed = to_float32_bytes(values)
    assert len(packed) == 4 * 32
    assert list(struct.unpack("<32f", packed)) == values
    assert to_float32_bytes([1.0, -0.5]) == b"\x00\x00\x80\x3f\x00\x00\x00\xbf"  # little-endian float32


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("text-embedding-3-small", 1536),
        ("text-embedding-3-large", 3072),
        ("text-embedding-ada-002", 1536),
        ("prod-text-embedding-3-large", 3072),  # an Azure deployment named after its model
        ("text-embedding-004", 768),
        ("gemini-embedding-001", 768),
        ("nomic-embed-text", DEFAULT_DIMENSIONS),
        ("", DEFAULT_DIMENSIONS),
    ],
)
def test_the_model_name_gives_the_size(model: str, size: int) -> None:
    assert dimensions_for(model) == size


def test_a_size_out_of_range_is_refused() -> None:
    for bad in (0, MAX_DIMENSIONS + 1):
        with pytest.raises(ValueError, match=f"dimensions must be 1 to {MAX_DIMENSIONS}, not {bad}"):
            vector("x", bad)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), dimensions=st.integers(1, 4096))
def test_any_text_gives_a_finite_unit_vector_of_the_asked_size(text: str, dimensions: int) -> None:
    values = vector(text, dimensions)
    assert len(values) == dimensions
    assert all(math.isfinite(v) for v in values)
    assert math.hypot(*values) == pytest.approx(1.0, abs=1e-6)


def test_retrieval_by_cosine_finds_the_document_on_the_topic() -> None:
    documents = [
        "Income tax law changes for 2025",
        "The best croissants in Lyon",
        "Paris weather forecast: sunny, 24 degrees",
        "How to file a tax return",
    ]
    vectors = [vector(d, 1536) for d in documents]

    def best(query: str) -> str:
        q = vector(query, 1536)
        return max(zip(documents, vectors, strict=True), key=lambda dv: cosine(q, dv[1]))[0]

    assert best("What is the weather like in Paris?") == documents[2]
    assert best("tax return deadline") == documents[3]
    assert best("croissants") == documents[1]


# -- the scenario's embeddings key --------------------------------------------------------------


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([path])
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


def test_pinned_vectors_are_loaded_as_written(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("embeddings:\n  dimensions: 2\n  vectors: {hello: [1, 0.5]}\n")
    (scenario,) = load_scenarios([path])
    assert scenario.embeddings == Embeddings(2, {"hello": (1.0, 0.5)})
    assert scenario.reply_text == ""  # an embeddings-only scenario needs no reply


def test_a_pinned_vector_of_the_wrong_size_is_a_positioned_problem(tmp_path: Path) -> None:
    text = "reply: hi\nembeddings:\n  dimensions: 3\n  vectors:\n    hello: [1, 2, 3]\n    bye: [1, 2]\n"
    assert problems(tmp_path, text) == [
        "s.yaml:6:10: embeddings.vectors.bye: a vector of 2 numbers, but dimensions says 3"
    ]
    text = "reply: hi\nembeddings:\n  vectors:\n    hello: [1, 2, 3]\n    bye: [1, 2]\n"
    assert problems(tmp_path, text) == [
        "s.yaml:5:10: embeddings.vectors.bye: a vector of 2 numbers, but the first pinned vector has 3"
    ]


def test_the_schema_checks_the_embeddings_key(tmp_path: Path) -> None:
    assert problems(tmp_path, "reply: hi\nembeddings: {dimensions: 0, vector: {}}\n") == [
        "s.yaml:2:26: embeddings.dimensions: must be at least 1, not 0",
        "s.yaml:2:29: embeddings.vector: unknown key (allowed: dimensions, vectors); did you mean 'vectors'?",
    ]
    assert problems(tmp_path, "reply: hi\nembeddings: {vectors: {a: [1, x]}}\n") == [
        "s.yaml:2:31: embeddings.vectors.a[1]: expected a number, not 'x'"
    ]
    assert problems(tmp_path, "reply: hi\nembeddings: {vectors: {a: []}}\n") == [
        "s.yaml:2:27: embeddings.vectors.a: must not be empty"
    ]


def test_a_sequence_steps_pinned_vector_is_checked_at_its_own_line(tmp_path: Path) -> None:
    text = "embeddings: {dimensions: 2}\nsequence:\n  - embeddings: {vectors: {hi: [1, 2, 3]}}\n"
    assert problems(tmp_path, text) == [
        "s.yaml:3:32: sequence[0].embeddings.vectors.hi: a vector of 3 numbers, but dimensions says 2"
    ]
