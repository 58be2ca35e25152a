from pathlib import Path

import pytest

from ltrr.plugin.ops.node.config import NodeConfig, default_cache_dir, default_state_dir


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 80}, "port must be between"),
        ({"port": 70000}, "port must be between"),
        (
            {"port": 65500},
            "port must be between 1024 and 65435",
        ),  # its transport port would not fit
        ({"heap": "lots"}, "heap must look like"),
        ({"heap": "1.5g"}, "heap must look like"),
        ({"start_timeout": 0}, "start_timeout must be positive"),
    ],
)
def test_bad_settings_are_refused(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        NodeConfig(cache_dir=tmp_path, state_dir=tmp_path, **kwargs)


def test_paths_derive_from_state_dir_and_port(tmp_path):
    config = NodeConfig(port=9333, state_dir=tmp_path, cache_dir=tmp_path / "c")
    assert config.url == "http://127.0.0.1:9333"
    assert config.node_dir == tmp_path / "nodes" / "9333"
    assert config.home == config.node_dir / "home"
    assert config.server_log == config.node_dir / "logs" / "ltrr-local.log"
    assert config.transport_port == 9433


def test_the_plugin_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LTRR_PLUGIN_DIR", raising=False)
    assert NodeConfig(cache_dir=tmp_path, state_dir=tmp_path).plugin_dir is None
    monkeypatch.setenv("LTRR_PLUGIN_DIR", str(tmp_path / "plugins"))
    assert NodeConfig(cache_dir=tmp_path, state_dir=tmp_path).plugin_dir == tmp_path / "plugins"


def test_environment_overrides_the_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("LTRR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LTRR_STATE_DIR", str(tmp_path / "state"))
    assert default_cache_dir() == tmp_path / "cache"
    assert default_state_dir() == tmp_path / "state"


def test_xdg_cache_is_honoured(monkeypatch, tmp_path):
    monkeypatch.delenv("LTRR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "ltrr"


def test_root_keeps_node_state_outside_its_home(monkeypatch):
    monkeypatch.delenv("LTRR_STATE_DIR", raising=False)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert default_state_dir() == Path("/var/lib/ltrr")
