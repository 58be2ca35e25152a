from pathlib import Path

import pytest

from ltrr.plugin.ops.cli import build_parser, main


def test_an_action_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["opensearch"])
    assert exit_info.value.code == 2


def test_bad_settings_print_one_line_and_exit_1(capsys):
    assert main(["opensearch", "up", "--port", "80"]) == 1
    err = capsys.readouterr().err
    assert err == "ltrr: error: port must be between 1024 and 65435, not 80\n"


def test_status_of_a_node_that_is_not_running(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LTRR_STATE_DIR", str(tmp_path))
    assert main(["opensearch", "status", "--port", "9398"]) == 3
    out = capsys.readouterr().out
    assert "node:         not running" in out
    assert str(tmp_path / "nodes" / "9398" / "home") in out


def test_down_when_nothing_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LTRR_STATE_DIR", str(tmp_path))
    assert main(["opensearch", "down", "--port", "9398"]) == 0
    assert "No OpenSearch started by ltrr is running for port 9398" in capsys.readouterr().out


GOOD = """\
target: music
budget: 10
policy: {name: static}
arms:
  - name: lexical
    template: multi_match.json.j2
    params: {fields: [name]}
    size: {min: 5, max: 10}
fallback: [{arm: lexical, size: 5}]
"""


def test_catalog_validate_ok_and_every_error_located(tmp_path, capsys):
    good = tmp_path / "good.yml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yml"
    bad.write_text(GOOD.replace("max: 10", "max: 3").replace("budget: 10", "budgett: 10"))
    assert main(["catalog", "validate", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok\n"
    assert main(["catalog", "validate", str(good), str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"{bad}:2: budgett: unknown key 'budgett'; did you mean 'budget'?" in err
    assert any(line.startswith(f"{bad}:8: arms[0].size.max:") for line in err)


def test_serve_refuses_a_bad_catalog_before_listening(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text(GOOD.replace("budget: 10", "budget: 0"))
    code = main(["serve", "--catalog", str(bad), "--opensearch", "http://127.0.0.1:1"])
    assert code == 1
    assert capsys.readouterr().err.startswith(f"ltrr: error: {bad}:2: budget:")


def test_serve_refuses_an_unusable_ca_bundle_before_listening(tmp_path, capsys):
    good = tmp_path / "good.yml"
    good.write_text(GOOD)
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    serve = ["serve", "--catalog", str(good), "--opensearch", "https://127.0.0.1:1"]
    serve += ["--listen", "127.0.0.1:0"]  # a free port: the CA is what fails
    code = main([*serve, "--opensearch-ca", str(junk), "--data-dir", str(tmp_path / "data")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ltrr: error: the OpenSearch CA bundle {junk} holds no usable PEM")


def test_the_secured_node_has_its_own_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LTRR_STATE_DIR", str(tmp_path))
    assert main(["opensearch", "status", "--security", "--port", "9398"]) == 3
    assert str(tmp_path / "nodes" / "9398-secured" / "home") in capsys.readouterr().out


def test_simulate_defaults_to_the_whole_line_up():
    args = build_parser().parse_args(["simulate", "--catalog", "c.yml", "--dataset", "d"])
    assert args.policy == [
        "safe_plans",
        "linucb",
        "thompson",
        "epsilon_greedy",
        "only:*",
        "static",
        "full",
        "hybrid:rrf",
        "hybrid:minmax",
        "oracle",
    ]
    assert (args.sessions, args.click_model, args.k, args.seed) == (1000, "pbm", 100, 7)


def test_demo_defaults_to_the_packaged_music_catalog():
    args = build_parser().parse_args(["demo"])
    assert args.catalog.name == "music.yml"
    assert args.catalog.is_file()
    assert (args.sessions, args.serve) == (3000, False)


def test_demo_and_build_say_where_the_lastfm_files_should_come_from(monkeypatch, capsys):
    monkeypatch.delenv("LTRR_LASTFM_SOURCE", raising=False)
    assert main(["data", "build", "music", "out"]) == 1
    assert "LTRR_LASTFM_SOURCE" in capsys.readouterr().err
    assert main(["demo"]) == 1
    assert "hetrec2011-lastfm-2k.zip" in capsys.readouterr().err


def test_data_load_prints_the_summary(tmp_path, capsys):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "t", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    assert main(["data", "load", "beir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "documents: 1" in out
    assert "judged_queries: 1" in out


def test_ltr_train_with_qrels_needs_a_dataset(capsys):
    assert main(["ltr", "train", "--catalog", "c.yml"]) == 1
    assert "--judgments qrels needs --dataset" in capsys.readouterr().err


def test_report_reads_the_period_it_is_given(capsys):
    assert main(["report", "--since", "a day"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ltrr: error: --since 'a day': expected a whole number and a unit")


def test_report_defaults():
    args = build_parser().parse_args(["report", "--since", "24h"])
    assert (args.opensearch, args.target, args.by) == ("http://127.0.0.1:9200", [], "auto")
    assert args.out == Path("build/live-report.html")
