import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops.simulate.clicks import CascadeModel, PositionBasedModel
from ltrr.plugin.ops.simulate.users import (
    DEFAULT_HOURLY_WEIGHTS,
    PopulationError,
    SimUser,
    UserConfig,
    UserPopulation,
)

START = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)  # noon UTC: the same date in every default zone


def test_same_seed_same_users_and_times():
    a = UserPopulation(50, seed=3, start=START)
    b = UserPopulation(50, seed=3, start=START)
    assert [a.member(i) for i in range(50)] == [b.member(i) for i in range(50)]
    assert [a.session(i) for i in range(100)] == [b.session(i) for i in range(100)]
    ra, rb = np.random.default_rng(9), np.random.default_rng(9)
    assert [a.draw(ra) for _ in range(20)] == [b.draw(rb) for _ in range(20)]


def test_a_session_does_not_depend_on_the_sessions_before_it():
    pop = UserPopulation(50, seed=3, start=START)
    later_first = pop.session(42)
    _ = [pop.session(i) for i in range(42)]
    assert pop.session(42) == later_first


def test_another_seed_gives_other_users():
    a = UserPopulation(50, seed=3, start=START)
    b = UserPopulation(50, seed=4, start=START)
    assert [a.session(i) for i in range(20)] != [b.session(i) for i in range(20)]


def test_context_holds_only_the_two_categorical_keys():
    pop = UserPopulation(20, seed=1, start=START)
    for i in range(50):
        user = pop.session(i)
        context = user.context()
        assert context == {"segment": user.segment, "locale": user.locale}
        assert all(isinstance(v, str) for v in context.values())


def test_context_of_a_hand_built_user():
    user = SimUser(
        7, "enthusiast", "ja-JP", datetime(2025, 3, 5, 21, tzinfo=ZoneInfo("Asia/Tokyo"))
    )
    assert user.context() == {"segment": "enthusiast", "locale": "ja-JP"}


def test_a_member_keeps_its_segment_and_locale_across_sessions():
    pop = UserPopulation(10, seed=2, start=START)
    for i in range(200):
        user = pop.session(i)
        assert (user.segment, user.locale) == pop.member(user.user_id)


def test_times_are_local_aware_and_inside_the_simulated_week():
    pop = UserPopulation(200, seed=5, start=START)
    zones = {"en-US": "America/New_York", "de-DE": "Europe/Berlin"}
    zones |= {"pt-BR": "America/Sao_Paulo", "ja-JP": "Asia/Tokyo"}
    seen_days = set()
    for i in range(2000):
        user = pop.session(i)
        assert user.time.utcoffset() is not None
        assert str(user.time.tzinfo) == zones[user.locale]
        # START is 2025-03-05 in every default zone; the week is 03-05 .. 03-11.
        assert date(2025, 3, 5) <= user.time.date() <= date(2025, 3, 11)
        seen_days.add(user.time.date())
    assert len(seen_days) == 7


def test_the_week_starts_on_the_local_date_of_start():
    # 23:00 UTC on 03-05 is already 03-06 in Tokyo (UTC+9): Tokyo's week starts a day later.
    start = datetime(2025, 3, 5, 23, 0, tzinfo=UTC)
    config = UserConfig(locales={"ja-JP": 1.0}, days=1)
    pop = UserPopulation(5, seed=0, start=start, config=config)
    assert {pop.session(i).time.date() for i in range(50)} == {date(2025, 3, 6)}


def test_evening_searches_outnumber_morning_ones():
    pop = UserPopulation(100, seed=11, start=START)
    rng = np.random.default_rng(12)
    hours = Counter(pop.draw(rng).time.hour for _ in range(5000))
    evening = sum(hours[h] for h in range(18, 22))
    morning = sum(hours[h] for h in range(6, 10))
    night = sum(hours[h] for h in range(2, 6))
    # Total weight: 0h-5h 1.0 + 6h-11h 5.4 + 12h-17h 6.8 + 18h-23h 11.5 = 24.7.
    # Expected shares: evening 1.7+2.2+2.5+2.4 = 8.8 -> 0.356,
    # morning 0.5+0.8+1.0+1.0 = 3.3 -> 0.134, night 0.1+0.1+0.1+0.2 = 0.5 -> 0.020.
    assert sum(DEFAULT_HOURLY_WEIGHTS) == pytest.approx(24.7)
    # Binomial SE at n=5000 is at most sqrt(0.25/5000) = 0.0071; 4 SE = 0.028.
    assert evening / 5000 == pytest.approx(8.8 / 24.7, abs=0.028)
    assert morning / 5000 == pytest.approx(3.3 / 24.7, abs=0.028)
    assert evening > 2 * morning > 2 * night


def test_member_shares_follow_the_weights():
    n = 4000
    pop = UserPopulation(n, seed=21, start=START)
    segments = Counter(pop.member(i)[0] for i in range(n))
    locales = Counter(pop.member(i)[1] for i in range(n))
    # Default shares: casual 0.6, enthusiast 0.25, new 0.15; en-US 0.45, de-DE 0.2, ...
    # 4 binomial SE: 4 * sqrt(0.6*0.4/4000) = 0.031 at most.
    for name, share in {"casual": 0.6, "enthusiast": 0.25, "new": 0.15}.items():
        assert segments[name] / n == pytest.approx(
            share, abs=4 * math.sqrt(share * (1 - share) / n)
        )
    for name, share in {"en-US": 0.45, "de-DE": 0.2, "pt-BR": 0.2, "ja-JP": 0.15}.items():
        assert locales[name] / n == pytest.approx(share, abs=4 * math.sqrt(share * (1 - share) / n))


def test_a_zero_weight_category_never_appears():
    config = UserConfig(segments={"casual": 1.0, "new": 0.0}, segment_eta={})
    pop = UserPopulation(300, seed=0, start=START, config=config)
    assert {pop.member(i)[0] for i in range(300)} == {"casual"}


def test_segment_eta_shapes_the_click_model():
    config = UserConfig()
    base = PositionBasedModel(eta=1.0, noise=0.1, g_max=2)
    deep = config.click_model(base, "enthusiast")
    assert deep == PositionBasedModel(eta=0.6, noise=0.1, g_max=2)
    # Rank 4 examination: 1/4**0.6 = 0.4353 for enthusiasts vs 1/4**1.0 = 0.25 for casual users.
    assert (
        deep.click_probabilities([0, 0, 0, 2])[3]
        > config.click_model(base, "casual").click_probabilities([0, 0, 0, 2])[3]
    )
    assert config.click_model(base, "casual") == base  # casual's eta is 1.0, as the base's
    cascade = CascadeModel()
    assert config.click_model(cascade, "enthusiast") is cascade


def test_a_segment_without_eta_keeps_the_base_model():
    config = UserConfig(segment_eta={"enthusiast": 0.5})
    base = PositionBasedModel(eta=0.9)
    assert config.click_model(base, "new") is base


def test_config_mappings_are_frozen_copies():
    segments = {"casual": 1.0}
    config = UserConfig(segments=segments, segment_eta={})
    segments["other"] = 1.0
    assert dict(config.segments) == {"casual": 1.0}
    with pytest.raises(TypeError):
        config.segments["x"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"segments": {}}, "segments"),
        ({"segments": {"casual": 0.0}, "segment_eta": {}}, "segments"),
        ({"locales": {"en-US": -1.0}}, "locales"),
        ({"locales": {"fr-FR": 1.0}}, "time_zones"),
        ({"time_zones": {"en-US": "Mars/Olympus"}, "locales": {"en-US": 1.0}}, "time_zones"),
        ({"hourly_weights": (1.0,) * 23}, "hourly_weights"),
        ({"hourly_weights": (math.nan,) * 24}, "hourly_weights"),
        ({"days": 0}, "days"),
        ({"segment_eta": {"expert": 0.5}}, "segment_eta"),
        ({"segment_eta": {"casual": -1.0}}, "segment_eta"),
    ],
)
def test_bad_config_is_named(kwargs, key):
    with pytest.raises(PopulationError, match=f"^{key}: ") as info:
        UserConfig(**kwargs)
    assert info.value.key == key
    assert isinstance(info.value, LtrrError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ((0, 1, START), "size"),
        ((10, -1, START), "seed"),
        ((10, 1, datetime(2025, 3, 5)), "start"),
    ],
)
def test_bad_population_arguments_are_named(args, key):
    with pytest.raises(PopulationError, match=f"^{key}: "):
        UserPopulation(*args)


def test_bad_session_index_is_rejected():
    with pytest.raises(PopulationError, match=r"^index: "):
        UserPopulation(5, 1, START).session(-1)


def test_times_fall_inside_the_hour_drawn():
    # Only 20h has weight: every search is between 20:00:00 and 20:59:59 local time.
    weights = tuple(1.0 if h == 20 else 0.0 for h in range(24))
    pop = UserPopulation(5, seed=0, start=START, config=UserConfig(hourly_weights=weights))
    for i in range(100):
        t = pop.session(i).time
        assert t.hour == 20
        midnight = t.replace(hour=0, minute=0, second=0)
        assert timedelta(hours=20) <= t - midnight < timedelta(hours=21)
