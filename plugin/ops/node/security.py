"""The secured local node: the security plugin with TLS on HTTP and transport, and four
users whose index permissions differ, so that the proxy is proven against OpenSearch's own
access control rather than a fake.

``provision`` makes, once per node folder, a private CA, the node's certificate (for
``127.0.0.1`` and ``localhost``), an admin certificate (the ``admin_dn`` that may change the
security index), and a random password per user, hashed with the plugin's own ``hash.sh``.
They live in ``NodeConfig.security_dir``, outside the disposable home, because the security
index is initialised from them on the first start (``allow_default_init_securityindex``) and
keeps them in ``data``; ``install`` copies them into the home's configuration on every start.

The users (their roles are in ``ROLES``):

- ``admin``: everything (``all_access``), for the test fixtures and ``up``'s own checks;
- ``proxy``: the proxy's own identity (``LTRR_OPENSEARCH_AUTHORIZATION``): the learning
  indices ``ltrr-*`` and their templates, and on the test targets ``sec-*`` reads, mappings and
  partial updates (the memory's ``rank_features`` scores), nothing else;
- ``alice``: reads and writes ``sec-a-*``, and writes UBI events to ``ubi_events``;
- ``bob``: reads ``sec-b-*`` only.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ltrr.plugin.errors import ProvisionError
from ltrr.plugin.ops.node.config import NodeConfig
from ltrr.plugin.ops.node.tls import Pair, make_ca, make_cert, rfc2253

USERS = ("admin", "proxy", "alice", "bob")
# Most significant first, as openssl takes them.
CA_SUBJECT = (("O", "ltrr"), ("OU", "local"), ("CN", "ltrr local CA"))
NODE_SUBJECT = (("O", "ltrr"), ("OU", "local"), ("CN", "node.ltrr.local"))
ADMIN_SUBJECT = (("O", "ltrr"), ("OU", "local"), ("CN", "admin.ltrr.local"))
NODE_HOSTS = ("127.0.0.1", "localhost")
_CREDENTIALS = "users.json"
_MATERIAL = ("ca.pem", "node.pem", "node-key.pem", "admin.pem", "admin-key.pem")

_PROXY_TARGETS = ["sec-*"]
ROLES: dict[str, Any] = {
    "ltrr_proxy": {
        "cluster_permissions": [
            "cluster_composite_ops",
            "cluster_monitor",
            "cluster_manage_index_templates",
        ],
        "index_permissions": [
            {"index_patterns": ["ltrr-*"], "allowed_actions": ["crud", "create_index", "manage"]},
            {
                "index_patterns": _PROXY_TARGETS,
                "allowed_actions": [
                    "read",
                    "indices:admin/mappings/get",
                    "indices:data/write/update",
                    "indices:data/write/bulk*",
                ],
            },
        ],
    },
    "ltrr_alice": {
        "cluster_permissions": ["cluster_composite_ops"],
        "index_permissions": [
            {"index_patterns": ["sec-a-*"], "allowed_actions": ["crud", "create_index"]},
            {"index_patterns": ["ubi_events"], "allowed_actions": ["index"]},
        ],
    },
    "ltrr_bob": {
        "cluster_permissions": ["cluster_composite_ops"],
        "index_permissions": [{"index_patterns": ["sec-b-*"], "allowed_actions": ["read"]}],
    },
}
ROLES_MAPPING: dict[str, Any] = {
    "all_access": {"users": ["admin"], "backend_roles": ["admin"]},
    "ltrr_proxy": {"users": ["proxy"]},
    "ltrr_alice": {"users": ["alice"]},
    "ltrr_bob": {"users": ["bob"]},
}
# HTTP basic against the internal users only; no anonymous access.
AUTH_CONFIG: dict[str, Any] = {
    "dynamic": {
        "http": {"anonymous_auth_enabled": False},
        "authc": {
            "basic_internal_auth_domain": {
                "http_enabled": True,
                "transport_enabled": True,
                "order": 0,
                "http_authenticator": {"type": "basic", "challenge": True},
                "authentication_backend": {"type": "intern"},
            }
        },
    }
}


def ca_file(config: NodeConfig) -> Path:
    """The CA that signed the node's certificate: what a client must trust to reach it."""
    return config.security_dir / "ca.pem"


def admin_cert(config: NodeConfig) -> Pair:
    return Pair(config.security_dir / "admin.pem", config.security_dir / "admin-key.pem")


def passwords(config: NodeConfig) -> dict[str, str]:
    """Each user's password, as ``provision`` made it."""
    return {name: entry["password"] for name, entry in _read_credentials(config).items()}


def basic_authorization(user: str, password: str) -> str:
    """The ``Authorization`` header value for HTTP basic (``LTRR_OPENSEARCH_AUTHORIZATION``)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def provision(config: NodeConfig, java_home: Path) -> bool:
    """Make the certificates and passwords unless they exist; True if they were made.

    Needs the assembled home (for ``hash.sh``). Partial material (an interrupted first run)
    is made again whole: nothing was started with it yet.
    """
    folder = config.security_dir
    if all((folder / name).is_file() for name in (*_MATERIAL, _CREDENTIALS)):
        return False
    if config.data.exists() and any(config.data.iterdir()):
        raise ProvisionError(
            f"{folder} lacks the certificates or passwords that the security index in "
            f"{config.data} was initialised with; delete {config.node_dir} to start afresh"
        )
    if folder.exists():
        shutil.rmtree(folder)
    scratch = folder.with_name(folder.name + ".partial")
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    ca = make_ca(scratch, CA_SUBJECT)
    make_cert(ca, scratch, "node", NODE_SUBJECT, server=True, hosts=NODE_HOSTS)
    make_cert(ca, scratch, "admin", ADMIN_SUBJECT, server=False)
    # The CA's key signs nothing more: keeping it would only be a way to forge a node.
    ca.key.unlink()
    users = {}
    for name in USERS:
        password = secrets.token_urlsafe(18)
        users[name] = {"password": password, "hash": _hash(config, java_home, password)}
    path = scratch / _CREDENTIALS
    path.touch(mode=0o600)
    path.write_text(json.dumps(users, indent=2) + "\n")
    scratch.rename(folder)
    return True


def _hash(config: NodeConfig, java_home: Path, password: str) -> str:
    """A bcrypt hash by the plugin's own tool (the password passed in the environment, never
    on a command line that ``ps`` shows)."""
    tool = config.home / "plugins" / "opensearch-security" / "tools" / "hash.sh"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "JAVA_HOME": str(java_home),
        "OPENSEARCH_JAVA_HOME": str(java_home),
        "LTRR_PASSWORD": password,
    }
    done = subprocess.run(
        ["bash", str(tool), "-env", "LTRR_PASSWORD"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines or not lines[-1].startswith("$2"):
        raise ProvisionError(f"hashing a password with {tool} failed: {done.stderr.strip()}")
    return lines[-1]


def install(config: NodeConfig) -> dict[str, Any]:
    """Copy the certificates and write the security configuration into the home; return the
    node settings that turn TLS and the plugin on."""
    target = config.home / "config"
    for name in ("ca.pem", "node.pem", "node-key.pem"):
        shutil.copy2(config.security_dir / name, target / name)
    users = _read_credentials(config)
    internal: dict[str, Any] = {
        name: {
            "hash": entry["hash"],
            "reserved": name == "admin",
            "backend_roles": ["admin"] if name == "admin" else [],
            "description": f"ltrr secured test node: {name}",
        }
        for name, entry in users.items()
    }
    folder = target / "opensearch-security"
    _write_yaml(folder / "config.yml", "config", {"config": AUTH_CONFIG})
    _write_yaml(folder / "internal_users.yml", "internalusers", internal)
    _write_yaml(folder / "roles.yml", "roles", ROLES)
    _write_yaml(folder / "roles_mapping.yml", "rolesmapping", ROLES_MAPPING)
    _write_yaml(folder / "action_groups.yml", "actiongroups", {})
    _write_yaml(folder / "tenants.yml", "tenants", {})
    _write_yaml(folder / "nodes_dn.yml", "nodesdn", {})
    return settings()


def restrict(config: NodeConfig) -> None:
    """Only the node's user may read its configuration (keys, hashes): the plugin warns on
    every start otherwise."""
    root = config.home / "config"
    for folder, _dirs, files in os.walk(root):
        Path(folder).chmod(0o700)
        for name in files:
            (Path(folder) / name).chmod(0o600)


def settings() -> dict[str, Any]:
    """TLS on transport (the plugin requires it) and HTTP, the node and admin names, and the
    security index initialised from the files above on the very first start."""
    pem = {"pemcert_filepath": "node.pem", "pemkey_filepath": "node-key.pem"}
    out: dict[str, Any] = {}
    for layer in ("transport", "http"):
        for key, value in {**pem, "pemtrustedcas_filepath": "ca.pem"}.items():
            out[f"plugins.security.ssl.{layer}.{key}"] = value
    out["plugins.security.ssl.http.enabled"] = True
    out["plugins.security.allow_default_init_securityindex"] = True
    out["plugins.security.authcz.admin_dn"] = [rfc2253(ADMIN_SUBJECT)]
    out["plugins.security.nodes_dn"] = [rfc2253(NODE_SUBJECT)]
    out["plugins.security.restapi.roles_enabled"] = ["all_access"]
    out["plugins.security.audit.type"] = "noop"
    return out


def _write_yaml(path: Path, kind: str, body: Mapping[str, Any]) -> None:
    """JSON is YAML: one line per file, no YAML library's quoting rules to get right."""
    document = {"_meta": {"type": kind, "config_version": 2}, **body}
    path.write_text(json.dumps(document, indent=2) + "\n")


def _read_credentials(config: NodeConfig) -> dict[str, dict[str, str]]:
    path = config.security_dir / _CREDENTIALS
    try:
        users: dict[str, dict[str, str]] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProvisionError(f"{path} does not exist: the secured node was never set up") from None
    return users
