"""The secured node's set-up, without starting it: certificates, users, configuration."""

import json
import shutil
import ssl
import stat

import pytest

from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.ops.node import security
from ltrr.plugin.ops.node.config import NodeConfig

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


@pytest.fixture
def config(tmp_path):
    return NodeConfig(port=9410, state_dir=tmp_path / "state", cache_dir=tmp_path, security=True)


@pytest.fixture
def no_java(monkeypatch):
    """hash.sh needs the assembled home and Java; its output format is all that matters here."""
    monkeypatch.setattr(security, "_hash", lambda config, java, password: f"$2y$12$h-{password}")


def test_a_secured_node_is_https_in_a_folder_of_its_own(tmp_path):
    plain = NodeConfig(port=9410, state_dir=tmp_path, cache_dir=tmp_path)
    secured = NodeConfig(port=9410, state_dir=tmp_path, cache_dir=tmp_path, security=True)
    assert plain.url == "http://127.0.0.1:9410"
    assert secured.url == "https://127.0.0.1:9410"
    assert secured.node_dir == tmp_path / "nodes" / "9410-secured"
    assert secured.node_dir != plain.node_dir
    assert secured.security_dir == secured.node_dir / "security"


@needs_openssl
def test_provision_makes_a_verifiable_node_certificate_and_a_password_per_user(config, no_java):
    assert security.provision(config, java_home=config.cache_dir) is True
    folder = config.security_dir
    assert not (folder / "ca-key.pem").exists()  # nothing more is ever signed
    assert stat.S_IMODE((folder / "users.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "node-key.pem").stat().st_mode) == 0o600
    assert (folder / "node-key.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    passwords = security.passwords(config)
    assert sorted(passwords) == sorted(security.USERS)
    assert len(set(passwords.values())) == len(security.USERS)
    # The node's certificate verifies against the CA for 127.0.0.1, as the proxy checks it.
    context = ssl.create_default_context(cafile=str(security.ca_file(config)))
    assert len(context.get_ca_certs()) == 1
    # Made once: a second call keeps what the security index was initialised with.
    before = (folder / "users.json").read_text()
    assert security.provision(config, java_home=config.cache_dir) is False
    assert (folder / "users.json").read_text() == before


@needs_openssl
def test_material_lost_beside_an_initialised_security_index_is_a_clear_error(config, no_java):
    config.data.mkdir(parents=True)
    (config.data / "nodes").mkdir()
    with pytest.raises(ProvisionError, match=f"delete {config.node_dir}"):
        security.provision(config, java_home=config.cache_dir)


@needs_openssl
def test_install_writes_the_users_roles_and_tls_settings(config, no_java):
    security.provision(config, java_home=config.cache_dir)
    (config.home / "config" / "opensearch-security").mkdir(parents=True)
    settings = security.install(config)
    folder = config.home / "config" / "opensearch-security"
    users = json.loads((folder / "internal_users.yml").read_text())
    assert users["_meta"] == {"type": "internalusers", "config_version": 2}
    passwords = security.passwords(config)
    assert {name: users[name]["hash"] for name in security.USERS} == {
        name: f"$2y$12$h-{passwords[name]}" for name in security.USERS
    }
    mapping = json.loads((folder / "roles_mapping.yml").read_text())
    assert mapping["all_access"]["users"] == ["admin"]
    assert mapping["ltrr_bob"] == {"users": ["bob"]}
    roles = json.loads((folder / "roles.yml").read_text())
    bob = roles["ltrr_bob"]["index_permissions"]
    assert bob == [{"index_patterns": ["sec-b-*"], "allowed_actions": ["read"]}]
    assert settings["plugins.security.ssl.http.enabled"] is True
    assert settings["plugins.security.authcz.admin_dn"] == ["CN=admin.ltrr.local,OU=local,O=ltrr"]
    assert settings["plugins.security.nodes_dn"] == ["CN=node.ltrr.local,OU=local,O=ltrr"]
    for name in ("ca.pem", "node.pem", "node-key.pem"):
        assert (config.home / "config" / name).is_file()
    security.restrict(config)
    assert stat.S_IMODE((config.home / "config").stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "internal_users.yml").stat().st_mode) == 0o600


def test_basic_authorization_is_the_header_value():
    assert security.basic_authorization("alice", "pw") == "Basic YWxpY2U6cHc="
