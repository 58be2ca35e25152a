import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from ltrr.query_plans.embed import Embedder, EmbedderError, EmbedStats, default_model_dir

CAT = "a cat sits on the mat"
KITTEN = "a kitten is sitting on a rug"
MARKET = "stock market crash"
TEXTS = [
    "hi",
    CAT,
    "Opensearch ranks documents with BM25 and approximate nearest neighbours over HNSW graphs.",
    KITTEN,
    "",
    "Ünïcödé and punctuation?! (still fine)",
]


@pytest.fixture(scope="module")
def embedder(model_dir):
    with Embedder(model_dir) as loaded:
        yield loaded


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_dimensions_and_unit_norm(embedder):
    assert embedder.dimensions == 384
    vectors = embedder.embed_batch(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(embedder.embed("unit norm")) == 384
    assert np.linalg.norm(embedder.embed("unit norm")) == pytest.approx(1.0, abs=1e-5)


def test_batch_matches_one_by_one_whatever_the_padding(embedder):
    batched = embedder.embed_batch(TEXTS)
    one_by_one = np.stack([embedder.embed_batch([text])[0] for text in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    chunked = embedder.embed_batch(TEXTS, batch_size=4)
    np.testing.assert_allclose(chunked, one_by_one, atol=1e-5)


def test_empty_batch_keeps_the_width(embedder):
    assert embedder.embed_batch([]).shape == (0, 384)


def test_a_single_string_is_not_a_batch(embedder):
    with pytest.raises(TypeError, match="not one string"):
        embedder.embed_batch("oops")


def test_pooling_matches_a_plain_numpy_reference(embedder, model_dir):
    """Recompute from the raw graph output: the mean of the real tokens' states, normalised."""
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    encoding = tokenizer.encode(CAT)
    session = ort.InferenceSession(
        str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    feed = {
        "input_ids": np.array([encoding.ids], dtype=np.int64),
        "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),
    }
    (hidden,) = session.run(["last_hidden_state"], feed)
    assert hidden.shape == (1, len(encoding.ids), 384)
    mean = hidden[0].mean(axis=0)
    expected = mean / np.linalg.norm(mean)

    np.testing.assert_allclose(embedder.embed_batch([CAT])[0], expected, atol=1e-5)
    # Padded next to a longer text, the padding must still not enter the mean.
    padded = embedder.embed_batch([CAT, TEXTS[2]])[0]
    np.testing.assert_allclose(padded, expected, atol=1e-5)
    # And the first CLS-to-SEP tokens are what the model sees, not a fixed 128-token pad.
    assert embedder._tokenizer.encode(CAT).ids == encoding.ids


def test_similar_sentences_are_closer_than_unrelated_ones(embedder):
    cat, kitten, market = (np.array(embedder.embed(text)) for text in (CAT, KITTEN, MARKET))
    related = cosine(cat, kitten)
    unrelated = cosine(cat, market)
    assert related > 0.5
    assert related - unrelated > 0.3


def test_long_text_is_truncated_to_max_length(embedder):
    long_text = " ".join(f"word{i}" for i in range(2000))
    assert len(embedder._tokenizer.encode(long_text).ids) == 256
    vector = embedder.embed_batch([long_text])[0]
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    # Only the first 256 tokens count: a different tail changes nothing.
    other_tail = long_text + " completely different ending about volcanoes"
    np.testing.assert_allclose(embedder.embed_batch([other_tail])[0], vector, atol=1e-6)


def test_cache_returns_the_same_immutable_object_and_counts(embedder):
    text = "cache me if you can"
    before = embedder.stats
    first = embedder.embed(text)
    second = embedder.embed(text)
    assert second is first
    assert isinstance(first, tuple)
    assert all(isinstance(x, float) for x in first)
    after = embedder.stats
    assert after == EmbedStats(hits=before.hits + 1, misses=before.misses + 1)
    np.testing.assert_allclose(first, embedder.embed_batch([text])[0], atol=1e-6)


def test_least_recently_used_entry_is_evicted(model_dir):
    with Embedder(model_dir, cache_size=2) as small:
        a = small.embed("alpha")
        small.embed("beta")
        assert small.embed("alpha") is a  # alpha is now the most recent
        small.embed("gamma")  # evicts beta
        assert small.embed("alpha") is a
        small.embed("beta")
        assert small.stats == EmbedStats(hits=2, misses=4)


def test_concurrent_callers_share_one_cache(model_dir):
    texts = [f"query number {i % 5}" for i in range(40)]
    with Embedder(model_dir) as shared, ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(shared.embed, texts))
        stats = shared.stats
        for text, vector in zip(texts, results, strict=True):
            assert shared.embed(text) == vector
    assert stats.hits + stats.misses == len(texts)
    assert stats.misses >= 5


def test_aembed_runs_misses_off_the_event_loop(embedder, monkeypatch):
    seen_threads: list[threading.Thread] = []
    real_embed = embedder.embed

    def recording_embed(text: str) -> tuple[float, ...]:
        seen_threads.append(threading.current_thread())
        return real_embed(text)

    monkeypatch.setattr(embedder, "embed", recording_embed)

    async def scenario():
        loop_thread = threading.current_thread()
        miss = await embedder.aembed("asynchronous miss")
        hit = await embedder.aembed("asynchronous miss")
        return loop_thread, miss, hit

    loop_thread, miss, hit = asyncio.run(scenario())
    assert hit is miss
    assert len(seen_threads) == 1  # the hit never left the loop
    assert seen_threads[0] is not loop_thread
    assert seen_threads[0].name.startswith("ltrr-embed")
    monkeypatch.undo()
    assert embedder.embed("asynchronous miss") is miss


def test_aembed_equals_embed(embedder):
    text = "async and sync agree"
    expected = tuple(embedder.embed_batch([text])[0].tolist())
    result = asyncio.run(embedder.aembed(text))
    np.testing.assert_allclose(result, expected, atol=1e-6)
    assert embedder.embed(text) is result


def test_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(EmbedderError, match="does not exist") as info:
        Embedder(missing)
    assert str(missing) in str(info.value)


def test_missing_model_file_is_named(tmp_path, model_dir):
    (tmp_path / "tokenizer.json").symlink_to(model_dir / "tokenizer.json")
    with pytest.raises(EmbedderError, match=r"has no model\.onnx") as info:
        Embedder(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_missing_tokenizer_is_named(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(EmbedderError, match=r"has no tokenizer\.json"):
        Embedder(tmp_path)


def test_unreadable_files_are_named(tmp_path, model_dir):
    (tmp_path / "tokenizer.json").write_text("{not json")
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(EmbedderError, match=r"cannot load tokenizer\.json"):
        Embedder(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "tokenizer.json").symlink_to(model_dir / "tokenizer.json")
    with pytest.raises(EmbedderError, match=r"cannot load model\.onnx") as info:
        Embedder(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_bad_settings_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="threads"):
        Embedder(tmp_path, threads=0)
    with pytest.raises(ValueError, match="cache_size"):
        Embedder(tmp_path, cache_size=-1)


def test_default_model_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LTRR_MODEL_DIR", raising=False)
    assert default_model_dir() is None
    monkeypatch.setenv("LTRR_MODEL_DIR", "")
    assert default_model_dir() is None
    monkeypatch.setenv("LTRR_MODEL_DIR", str(tmp_path))
    assert default_model_dir() == tmp_path
