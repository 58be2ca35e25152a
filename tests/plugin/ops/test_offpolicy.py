import json

import orjson
import pytest

from ltrr.bandit.features import BASE_FEATURES
from ltrr.bandit.state import layout_digest
from ltrr.plugin.errors import LtrrError
from ltrr.plugin.ops import offpolicy as ope
from ltrr.plugin.ops.offpolicy import format_table, run_ope
from tests.plugin.ops._scripted import scripted_cluster

CATALOG = """\
target: [music, music-*]
budget: 20
policy: {name: static}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 5, max: 10}
  - name: popular
    template: rank_feature.json.j2
    params: {field: popularity, text_fields: [name]}
    size: {max: 10}
fallback:
  - {arm: lexical, size: 5}
"""

X = [1.0] + [0.0] * (len(BASE_FEATURES) - 1)  # only the bias


def doc(decision_id, included, reward=None, **overrides):
    """A decision logged with raw p = (0.5, 0.5): marginals (0.5 + 0.5·0.5, 0.5) = (0.75, 0.5),
    so P({lexical}) = 0.25 + 0.25 = 0.5, P({popular}) = 0.25, P({both}) = 0.25."""
    out = {
        "decision_id": decision_id,
        "target": "music",
        "catalog": "abc",
        "policy": "linucb",
        "policy_version": 3,
        "timestamp": 1_800_000_000.0,
        "window_seconds": 1800.0,
        "query": "daft punk",
        "context": {},
        "learnable": True,
        "feature_names": list(BASE_FEATURES),
        "features": X,
        "arms": {
            "lexical": {
                "included": "lexical" in included,
                "size": 10,
                "propensity": 0.75,
                "score": 0.0,
                "ok": True,
                "results": [],
            },
            "popular": {
                "included": "popular" in included,
                "size": 10,
                "propensity": 0.5,
                "score": 0.0,
                "ok": True,
                "results": [],
            },
        },
        "returned": [],
    }
    if reward is not None:
        out["reward"] = reward
    out.update(overrides)
    return out


BOTH = ("lexical", "popular")
DECISIONS = [
    doc("d1", ("lexical",), 1.0),
    doc("d2", BOTH, 3.0),
    doc("d3", ("popular",), 0.0),
    doc("d4", ("lexical",), 0.5),
    doc("d5", BOTH, 1.0),
    doc("d6", BOTH, 9.0, features=None),  # skipped: no features
    doc("d7", BOTH, 9.0, learnable=False, policy="static_fallback"),  # skipped
    doc("d8", BOTH, 9.0, target="books"),  # ignored: another target
]


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "music.yml"
    path.write_text(CATALOG)
    return path


def write_jsonl(path, docs):
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


@pytest.fixture
def log(tmp_path):
    return write_jsonl(tmp_path / "decisions.jsonl", DECISIONS)


def run(log, catalog, policy="static:lexical", **kwargs):
    defaults = {"opensearch": None, "seed": 0, "report": None, "resamples": 200}
    return run_ope(str(log), target_catalog=catalog, target_policy=policy, **{**defaults, **kwargs})


def estimates(result):
    return {e.name: e for e in result.evaluation.estimates}


def test_jsonl_with_a_static_target(log, catalog):
    result = run(log, catalog)
    # static {lexical}: P({lexical}) = 1, other sets 0.
    # w = (1/0.5, 0, 0, 1/0.5, 0) = (2, 0, 0, 2, 0); w·r = (2, 0, 0, 1, 0), sum 3
    e = estimates(result)
    assert e["ips"].value == pytest.approx(0.6)  # 3 / 5
    assert e["snips"].value == pytest.approx(0.75)  # 3 / 4
    assert e["ips"].ess == pytest.approx(2.0)  # 4² / 8
    assert result.evaluation.logged.value == pytest.approx(1.1)  # (1 + 3 + 0 + 0.5 + 1) / 5
    assert result.evaluation.zero_support == pytest.approx(0.6)  # 3 of 5 sets
    assert (result.read, result.skipped, result.ignored) == (8, 2, 1)
    assert result.evaluation.n == 5
    assert result.target == "music"
    assert result.policy == "static:lexical"
    assert result.logged_policies == {"linucb": 5}
    assert result.state_arms == ()


def test_the_catalogs_own_policy_is_the_default_target(log, catalog):
    result = run(log, catalog, policy=None)
    # the catalog's static plan takes both arms: P({both}) = 1.
    # w = (0, 4, 0, 0, 4); w·r = (0, 12, 0, 0, 4), sum 16
    e = estimates(result)
    assert result.policy == "static"
    assert e["ips"].value == pytest.approx(3.2)  # 16 / 5
    assert e["snips"].value == pytest.approx(2.0)  # 16 / 8
    assert e["ips"].ess == pytest.approx(2.0)  # 8² / 32


def test_table_shows_the_estimates_and_the_counts(log, catalog):
    table = format_table(run(log, catalog))
    lines = table.splitlines()
    assert lines[0] == "target music, policy static:lexical, 5 decisions from " + str(log)
    assert next(line for line in lines if line.startswith("ips")).split()[1] == "0.600"
    assert next(line for line in lines if line.startswith("snips")).split()[1] == "0.750"
    assert next(line for line in lines if line.startswith("logged")).split()[1] == "1.100"
    assert "read 8: 5 used, 2 skipped" in table
    assert "1 ignored" in table
    assert "never takes 60.0% of the logged arm sets" in table


def test_report_is_written(log, catalog, tmp_path):
    path = tmp_path / "out" / "ope.html"
    result = run(log, catalog, report=path)
    assert result.report == path
    html = path.read_text()
    assert "Off-policy evaluation" in html
    assert "<td>snips</td><td>0.750</td>" in html
    assert "data:image/png;base64," in html


def test_mismatched_arms_name_both_lists(tmp_path, catalog):
    other = doc("d1", ("lexical",), 1.0)
    other["arms"]["vector"] = other["arms"].pop("popular")
    path = write_jsonl(tmp_path / "bad.jsonl", [DECISIONS[0], other])
    with pytest.raises(LtrrError) as raised:
        run(path, catalog)
    message = str(raised.value)
    assert f"{path}:2" in message
    assert "['lexical', 'vector']" in message
    assert "['lexical', 'popular']" in message


def test_arms_in_another_order_are_matched_by_name(tmp_path, catalog):
    swapped = [{**d, "arms": dict(reversed(list(d["arms"].items())))} for d in DECISIONS]
    result = run(write_jsonl(tmp_path / "swapped.jsonl", swapped), catalog)
    assert estimates(result)["ips"].value == pytest.approx(0.6)  # as in the first test


def test_another_feature_layout_is_refused(tmp_path, catalog):
    names = [*BASE_FEATURES[:-1], "ctx:tier"]
    path = write_jsonl(tmp_path / "bad.jsonl", [doc("d1", ("lexical",), 1.0, feature_names=names)])
    with pytest.raises(LtrrError, match=r"position 17: 'ctx:tier' logged, 'weekday_cos'"):
        run(path, catalog)


def test_a_jsonl_decision_needs_its_reward(tmp_path, catalog):
    path = write_jsonl(tmp_path / "bad.jsonl", [DECISIONS[0], doc("d2", BOTH)])
    with pytest.raises(LtrrError, match=r'bad.jsonl:2: .*"reward" number'):
        run(path, catalog)


def test_a_line_that_is_not_json(tmp_path, catalog):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(DECISIONS[0]) + "\n\n{oops\n")
    with pytest.raises(LtrrError, match=r"bad.jsonl:3: not a JSON document"):
        run(path, catalog)


def test_an_inconsistent_decision_is_located(tmp_path, catalog):
    bad = doc("d2", ("lexical",), 1.0)
    bad["arms"]["lexical"]["propensity"] = 0.0  # included, yet never drawable
    bad["arms"]["popular"]["propensity"] = 1.0
    path = write_jsonl(tmp_path / "bad.jsonl", [DECISIONS[0], bad])
    with pytest.raises(LtrrError, match=r"bad.jsonl:2: .*no chance"):
        run(path, catalog)


def test_nothing_usable(tmp_path, catalog):
    path = write_jsonl(tmp_path / "none.jsonl", DECISIONS[5:])
    with pytest.raises(LtrrError, match="3 read, 2 without features or not learnable, 1 for"):
        run(path, catalog)


@pytest.mark.parametrize(
    ("policy", "match"),
    [
        ("greedy", "unknown target policy 'greedy'"),
        ("linucb:lexical", "only static takes a list of arms"),
        ("static:", "name the arms"),
        ("static:vector", r"unknown arms \['vector'\]"),
    ],
)
def test_bad_target_policies(log, catalog, policy, match):
    with pytest.raises(LtrrError, match=match):
        run(log, catalog, policy=policy)


def test_an_index_name_needs_a_cluster(catalog):
    with pytest.raises(LtrrError, match="give the cluster's URL with --opensearch"):
        run("ltrr-decisions", catalog)


# -- through a fake cluster --------------------------------------------------------------------


class Reply:
    def __init__(self, status, body):
        self.status_code = status
        self.body = body
        self.text = json.dumps(body)
        self.content = self.text.encode()

    def json(self):
        return self.body


class FakeCluster:
    """Answers the few requests ``ltrr ope`` makes, from documents held in memory."""

    def __init__(self, decisions=(), rewards=None, state=None):
        self.decisions = list(decisions)
        self.rewards = rewards or {}
        self.state = state
        self.requests = []

    def request(self, method, url, data=None, headers=None, timeout=None):
        json = orjson.loads(data) if data else None
        self.requests.append((url, json))
        path = url.removeprefix("http://os:9200")
        if path == "/ltrr-state/_mget":
            if self.state is None:
                return Reply(404, {"error": "index_not_found_exception"})
            return Reply(200, {"docs": [self._state_doc(i) for i in json["ids"]]})
        if path == "/ltrr-decisions/_search":
            start = 0
            if "search_after" in json:
                start = 1 + next(
                    i
                    for i, d in enumerate(self.decisions)
                    if d["decision_id"] == json["search_after"][1]
                )
            page = self.decisions[start : start + json["size"]]
            hits = [{"_source": d, "sort": [d["timestamp"], d["decision_id"]]} for d in page]
            return Reply(200, {"hits": {"hits": hits}})
        if path == "/ltrr-events/_search":
            wanted = json["query"]["terms"]["decision_id"]
            buckets = [
                {"key": i, "doc_count": 1, "reward": {"value": self.rewards[i]}}
                for i in wanted
                if i in self.rewards
            ]
            return Reply(200, {"aggregations": {"decisions": {"buckets": buckets}}})
        return Reply(400, {"error": f"unexpected {path}"})

    def _state_doc(self, doc_id):
        source = self.state.get(doc_id)
        if source is None:
            return {"_id": doc_id, "found": False}
        return {"_id": doc_id, "found": True, "_source": source}


def test_decisions_and_rewards_from_the_index(catalog, monkeypatch):
    monkeypatch.setattr(ope, "PAGE_SIZE", 2)
    docs = [
        doc("d1", ("lexical",), timestamp=1.0),
        doc("d2", BOTH, timestamp=2.0),
        doc("d3", ("lexical",), timestamp=3.0),
    ]
    cluster = FakeCluster(docs, rewards={"d1": 2.0, "d3": 0.5})  # d2 had no event: reward 0
    result = run(
        "ltrr-decisions", catalog, opensearch="http://os:9200", cluster=scripted_cluster(cluster)
    )
    # static {lexical}: w = (2, 0, 2); w·r = (4, 0, 1), sum 5
    e = estimates(result)
    assert e["ips"].value == pytest.approx(5 / 3)
    assert e["snips"].value == pytest.approx(1.25)  # 5 / 4
    assert result.evaluation.logged.value == pytest.approx(2.5 / 3)  # (2 + 0 + 0.5) / 3
    searches = [body for url, body in cluster.requests if url.endswith("/ltrr-decisions/_search")]
    assert len(searches) == 2  # pages of 2 and 1
    assert searches[0]["query"] == {"term": {"target": "music"}}
    assert searches[1]["search_after"] == [2.0, "d2"]
    assert result.state_arms == ()  # a static target reads no state


def theta_state(bias_weight):
    """An arm whose θ is ``bias_weight`` on the bias: A = I (ridge 1), b = bias_weight·e_bias."""
    d = len(BASE_FEATURES)
    a = [[1.0 if i == j else 0.0 for j in range(d)] for i in range(d)]
    b = [bias_weight] + [0.0] * (d - 1)
    return {"layout": layout_digest(BASE_FEATURES), "ridge": 1.0, "a": a, "b": b, "n": 50}


def test_a_learning_target_starts_from_ltrr_state(log, catalog):
    # LinUCB at x = e_bias with A = I: spread 1, score = θ·x + 1, margin = θ·x + 1 - cost(1).
    # lexical θ·x = 100: p = 0.05 + 0.9·sigmoid(100 / 0.1) = 0.95; popular θ·x = -100: 0.05.
    # Sets: P({lexical}) = 0.95·0.95 + 0.05·0.95 = 0.95, P({popular}) = 0.05·0.05 = 0.0025,
    # P({both}) = 0.95·0.05 = 0.0475. Logged (0.5, 0.25, 0.25), so the weights of d1..d5 are
    # 1.9, 0.19, 0.01, 1.9, 0.19; w·r = 1.9 + 0.57 + 0 + 0.95 + 0.19 = 3.61, Σw = 4.19.
    state = {"music:lexical": theta_state(100.0), "music:popular": theta_state(-100.0)}
    cluster = FakeCluster(state=state)
    result = run(
        log,
        catalog,
        policy="linucb",
        opensearch="http://os:9200",
        cluster=scripted_cluster(cluster),
    )
    e = estimates(result)
    assert result.state_arms == ("lexical", "popular")
    assert e["ips"].value == pytest.approx(3.61 / 5)
    assert e["snips"].value == pytest.approx(3.61 / 4.19)
    mget = [body for url, body in cluster.requests if url.endswith("/_mget")]
    assert mget == [{"ids": ["music:lexical", "music:popular"]}]


def test_a_learning_target_without_state_uses_its_prior(log, catalog):
    # Prior: θ = 0, A = I, margin = 0 + 1 - 1 = 0, p = 0.5 for both arms: the logging policy
    # itself, so every weight is 1 and IPS is the logged average 1.1.
    result = run(
        log,
        catalog,
        policy="linucb",
        opensearch="http://os:9200",
        cluster=scripted_cluster(FakeCluster()),
    )
    assert result.state_arms == ()
    assert estimates(result)["ips"].value == pytest.approx(1.1)


def test_state_for_another_layout_is_not_used(log, catalog):
    stale = {**theta_state(100.0), "layout": "0123456789abcdef"}
    cluster = FakeCluster(state={"music:lexical": stale, "music:popular": theta_state(-100.0)})
    result = run(
        log,
        catalog,
        policy="linucb",
        opensearch="http://os:9200",
        cluster=scripted_cluster(cluster),
    )
    assert result.state_arms == ("popular",)


def test_policy_scored_fusion_is_flagged(log, tmp_path):
    path = tmp_path / "by_policy.yml"
    path.write_text(CATALOG + "fusion: {by_policy: true}\n")
    result = run(log, path)
    assert result.caveats == (ope.BY_POLICY_CAVEAT,)
    assert "caveat: the catalog fuses by policy scores" in format_table(result)


def test_fixed_fusion_has_no_caveat(log, catalog):
    assert run(log, catalog).caveats == ()


def _plan_doc(decision_id, included, reward, set_propensity):
    """Logged by a plan policy: the marginals (0.75, 0.5) are kept, but the arm set's own
    probability is what the log says, not what independent draws would give."""
    return doc(
        decision_id,
        included,
        reward,
        policy="safe_plans",
        plan="only:lexical" if included == ("lexical",) else "all",
        plan_propensity=set_propensity,
        set_propensity=set_propensity,
    )


def test_a_plan_policy_log_is_weighted_by_its_set_propensity(tmp_path, catalog):
    path = write_jsonl(
        tmp_path / "plans.jsonl",
        [
            _plan_doc("p1", ("lexical",), 1.0, 0.1),
            _plan_doc("p2", BOTH, 2.0, 0.8),
            _plan_doc("p3", ("lexical",), 0.0, 0.1),
        ],
    )
    result = run(path, catalog)
    # static {lexical}: w = (1/0.1, 0, 1/0.1) = (10, 0, 10); w·r = (10, 0, 0), sum 10. The
    # marginals would have said P({lexical}) = 0.5 and w = 2.
    e = estimates(result)
    assert e["ips"].value == pytest.approx(10 / 3)
    assert e["snips"].value == pytest.approx(0.5)  # 10 / 20


def test_a_plan_policy_log_without_set_propensity_is_refused(tmp_path, catalog):
    old = doc("p1", ("lexical",), 1.0, policy="safe_plans", plan="only:lexical")
    path = write_jsonl(tmp_path / "old.jsonl", [old])
    with pytest.raises(LtrrError, match="without set_propensity"):
        run(path, catalog)


def test_a_plan_policy_target_is_weighted_by_its_own_set_probability(tmp_path):
    """safe_plans as the target: fresh, it draws all (static) with 1 - epsilon and every other
    plan with epsilon / (plans - 1). With two arms the plans are all, all:half, only:lexical and
    only:popular, so P({both}) = 0.7 + 0.1 and P({lexical}) = 0.1 at epsilon 0.3 -- not the
    product of its per-arm marginals (0.9 x 0.9 = 0.81 and 0.9 x 0.1 = 0.09)."""
    path = tmp_path / "plans.yml"
    path.write_text(
        CATALOG.replace("policy: {name: static}", "policy: {name: safe_plans, epsilon: 0.3}")
    )
    log = write_jsonl(
        tmp_path / "plans.jsonl",
        [
            _plan_doc("p1", ("lexical",), 1.0, 0.5),
            _plan_doc("p2", BOTH, 2.0, 0.5),
        ],
    )
    result = run(log, path, policy=None)
    # w = (0.1 / 0.5, 0.8 / 0.5) = (0.2, 1.6); w·r = (0.2, 3.2); IPS = 3.4 / 2
    assert estimates(result)["ips"].value == pytest.approx(1.7)
