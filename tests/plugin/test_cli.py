import pytest

from ltrr.plugin.cli import build_parser, main


def test_an_action_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["opensearch"])
    assert exit_info.value.code == 2


def test_bad_settings_print_one_line_and_exit_1(capsys):
    assert main(["opensearch", "up", "--port", "80"]) == 1
    err = capsys.readouterr().err
    assert err == "ltrr: error: port must be between 1024 and 65535, not 80\n"


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
