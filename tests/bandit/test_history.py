"""Per-query plan history: (shown, summed residual) per plan, least recently used out first."""

import numpy as np
import pytest

from ltrr.bandit.history import QueryHistory


def test_unknown_key_is_none_and_not_created():
    history = QueryHistory(3)
    assert history.get("q") is None
    assert len(history) == 0


def test_add_accumulates_per_plan():
    history = QueryHistory(3)
    history.add("q", 1, 0.5)
    history.add("q", 1, 1.5)
    history.add("q", 2, -1.0)
    shown, residual = history.get("q")
    np.testing.assert_array_equal(shown, [0.0, 2.0, 1.0])
    np.testing.assert_array_equal(residual, [0.0, 2.0, -1.0])
    assert len(history) == 1


def test_add_with_shown_zero_adds_residual_only():
    history = QueryHistory(2)
    history.add("q", 0, 1.0)
    history.add("q", 0, 0.25, shown=0.0)
    shown, residual = history.get("q")
    np.testing.assert_array_equal(shown, [1.0, 0.0])
    np.testing.assert_array_equal(residual, [1.25, 0.0])
    history.add("new", 1, 3.0, shown=0.0)  # a key first seen through later reward
    shown, residual = history.get("new")
    np.testing.assert_array_equal(shown, [0.0, 0.0])
    np.testing.assert_array_equal(residual, [0.0, 3.0])


def test_empty_key_is_ignored():
    history = QueryHistory(2)
    history.add("", 0, 1.0)
    assert len(history) == 0
    assert history.get("") is None


def test_lru_bound_drops_the_oldest_key():
    history = QueryHistory(2, max_keys=2)
    history.add("k1", 0, 1.0)
    history.add("k2", 0, 2.0)
    history.add("k3", 0, 3.0)
    assert len(history) == 2
    assert history.get("k1") is None
    assert history.get("k2") is not None
    assert history.get("k3") is not None


def test_get_moves_the_key_to_the_end():
    history = QueryHistory(2, max_keys=2)
    history.add("k1", 0, 1.0)
    history.add("k2", 0, 2.0)
    assert history.get("k1") is not None  # k1 is now the most recent: k2 goes first
    history.add("k3", 0, 3.0)
    assert history.get("k2") is None
    assert history.get("k1")[1][0] == 1.0
    assert history.get("k3")[1][0] == 3.0


def test_add_to_a_known_key_moves_it_to_the_end():
    history = QueryHistory(2, max_keys=2)
    history.add("k1", 0, 1.0)
    history.add("k2", 0, 2.0)
    history.add("k1", 1, 5.0)
    history.add("k3", 0, 3.0)
    assert history.get("k2") is None
    shown, residual = history.get("k1")
    np.testing.assert_array_equal(shown, [1.0, 1.0])
    np.testing.assert_array_equal(residual, [1.0, 5.0])


def test_max_keys_one():
    history = QueryHistory(1, max_keys=1)
    history.add("k1", 0, 1.0)
    history.add("k2", 0, 2.0)
    assert len(history) == 1
    assert history.get("k1") is None
    assert history.get("k2")[1][0] == 2.0


@pytest.mark.parametrize("max_keys", [0, -1])
def test_max_keys_must_be_positive(max_keys):
    with pytest.raises(ValueError, match="max_keys"):
        QueryHistory(2, max_keys=max_keys)
