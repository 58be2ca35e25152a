"""Start, find and stop the node process: only ever the one this tool started.

A pid file alone can be stale (the pid reused by another program after a reboot), so a pid
counts as ours only while ``/proc/<pid>/cmdline`` still names our node home.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ltrr.plugin.errors import ClusterUnavailable, NodeStartError, ProvisionError
from ltrr.plugin.ops.client import DEFAULT_TIMEOUT, Cluster, connect
from ltrr.plugin.ops.node import security
from ltrr.plugin.ops.node.config import NODE_USER, NodeConfig


def node_user() -> str | None:
    """The account the node runs as: a dedicated one when we are root, else ourselves (None)."""
    return NODE_USER if os.geteuid() == 0 else None


def ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise ProvisionError(
            f"OpenSearch will not run as root and there is no useradd to create {name}"
        )
    subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=True,
        capture_output=True,
    )


def hand_over(config: NodeConfig, user: str) -> None:
    """Give the node folder to ``user`` and check that it can reach it at all."""
    for parent in config.node_dir.parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise ProvisionError(
                f"{parent} is closed to other users, so {user} cannot reach {config.node_dir}; "
                "set LTRR_STATE_DIR to a folder outside it"
            )
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(config.node_dir):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def start(config: NodeConfig, java_home: Path, user: str | None) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(config.node_dir),
        "LANG": "C.UTF-8",
        "JAVA_HOME": str(java_home),
        "OPENSEARCH_JAVA_HOME": str(java_home),
        "OPENSEARCH_PATH_CONF": str(config.home / "config"),
    }
    config.logs.mkdir(parents=True, exist_ok=True)
    with config.console_log.open("ab") as console:
        proc = subprocess.Popen(
            [str(config.home / "bin" / "opensearch")],
            cwd=config.home,
            env=env,
            user=user,
            group=pwd.getpwnam(user).pw_gid if user else None,
            extra_groups=[] if user else None,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the caller's terminal must not reach the node
        )
    config.pid_file.write_text(f"{proc.pid}\n")
    return proc


def owned_pid(config: NodeConfig) -> int | None:
    """The running node's pid, if the pid file names a live process of this node home."""
    try:
        pid = int(config.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _is_ours(pid, config.home) else None


def _is_ours(pid: int, home: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    marker = f"-Dopensearch.path.home={home}".encode()
    return _alive(pid) and any(arg == marker for arg in cmdline)


def _alive(pid: int) -> bool:
    """True until the process is gone; a zombie counts as gone (and is reaped if it is ours)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    if state in ("Z", "X"):
        _reap(pid)
        return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def cluster(config: NodeConfig, timeout: float = DEFAULT_TIMEOUT, user: str = "admin") -> Cluster:
    """A client of this node: on a secured one over HTTPS, trusting only its own CA, as
    ``user`` (the admin by default)."""
    if not config.security:
        return Cluster(config.url, timeout=timeout)
    password = security.passwords(config)[user]
    client = connect(
        config.url,
        timeout=timeout,
        http_auth=(user, password),
        verify_certs=True,
        ca_certs=str(security.ca_file(config)),
        ssl_show_warn=False,
    )
    return Cluster(config.url, client=client, timeout=timeout)


def check_users(config: NodeConfig) -> None:
    """Every user logs in: a security index initialised with other passwords (from an older
    node folder) is said plainly here, not as a 401 in some later test."""
    for user in security.USERS:
        http = cluster(config, timeout=30, user=user)
        try:
            status, reply = http.request("GET", "/_plugins/_security/authinfo")
        except ClusterUnavailable as exc:
            raise NodeStartError(f"checking user {user} failed: {exc}") from exc
        finally:
            http.close()
        if status != 200:
            raise NodeStartError(
                f"user {user} cannot log in ({status} {reply!s:.200}): the security index in "
                f"{config.data} does not match {config.security_dir}; stop the node and delete "
                f"{config.node_dir} to start afresh"
            )


def wait_green(config: NodeConfig, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Block until every primary shard is assigned; fail early, with the log tail, if it dies.

    Yellow counts: one node can never assign the replicas of an index created with the default
    of one (clients create ``ubi_events`` that way), and its primaries serve everything.
    """
    deadline = time.monotonic() + timeout
    http = cluster(config, timeout=5)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise NodeStartError(
                f"OpenSearch exited with code {proc.returncode} while starting:\n"
                + log_tail(config)
            )
        try:
            status, health = http.request(
                "GET", "/_cluster/health", params={"wait_for_status": "yellow", "timeout": "2s"}
            )
            if status == 200 and health.get("status") in ("green", "yellow"):
                return
        except ClusterUnavailable:
            pass
        time.sleep(0.5)
    raise NodeStartError(
        f"OpenSearch did not turn green or yellow within {timeout:.0f}s:\n{log_tail(config)}"
    )


def settle_single_node(config: NodeConfig) -> None:
    """One node can never place a replica: new indices default to none, so that the health
    rule (green) holds for every index created without its own setting (UBI's ``ubi_events``,
    say). Set through the cluster settings API: OpenSearch 2.19 ignores it in opensearch.yml.
    """
    body = {"persistent": {"cluster.default_number_of_replicas": 0}}
    try:
        status, reply = cluster(config, timeout=30).request("PUT", "/_cluster/settings", body)
    except ClusterUnavailable as exc:
        raise NodeStartError(f"setting the single-node defaults failed: {exc}") from exc
    if status != 200:
        raise NodeStartError(f"setting the single-node defaults failed: {status} {reply!s:.300}")


def stop(
    config: NodeConfig, pid: int, proc: subprocess.Popen[bytes] | None, timeout: float = 60.0
) -> None:
    """SIGTERM (OpenSearch flushes and exits cleanly), then SIGKILL if it overstays."""
    _signal(pid, signal.SIGTERM)
    if not _gone_within(pid, proc, timeout):
        _signal(pid, signal.SIGKILL)
        _gone_within(pid, proc, 30.0)
    config.pid_file.unlink(missing_ok=True)


def _signal(pid: int, signum: signal.Signals) -> None:
    # The node may exit on its own between our check and the signal: that is success, not error.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _gone_within(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap our own child, keeping its exit code
        # Not "no longer ours": a dying process loses its command line before it is gone.
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def log_tail(config: NodeConfig, lines: int = 40) -> str:
    for path in (config.server_log, config.console_log):
        if path.is_file() and path.stat().st_size:
            return "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
    return "(no log written)"
