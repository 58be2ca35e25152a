"""A private certificate authority and the certificates a secured local node needs, made with
the ``openssl`` command line (no Python crypto dependency).

Keys are unencrypted PKCS#8 PEM, the one key format the security plugin reads; every
certificate carries the extensions a strict verifier asks for (key identifiers, key usage,
and for servers the ``127.0.0.1``/``localhost`` names), so Python's default TLS checks, Java's
and curl's all accept them.
"""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ltrr.plugin.errors import ProvisionError

DAYS = 3650

_CA_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca
[dn]
{dn}
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

_LEAF_EXTENSIONS = """\
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
{alt}
"""


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key, both PEM files."""

    cert: Path
    key: Path


def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise ProvisionError(
            "the openssl command is needed to make the secured node's certificates: install it "
            "(e.g. apt-get install openssl)"
        )
    return found


def _run(args: Sequence[str], cwd: Path) -> None:
    done = subprocess.run(
        [openssl(), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise ProvisionError(f"openssl {args[0]} failed: {(done.stderr or done.stdout).strip()}")


def _dn_lines(subject: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{key} = {value}" for key, value in subject)


def _key(path: Path, cwd: Path) -> None:
    _run(
        ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path)], cwd
    )
    path.chmod(0o600)


def make_ca(folder: Path, subject: Sequence[tuple[str, str]]) -> Pair:
    """A self-signed CA (``ca.pem``, ``ca-key.pem``) in ``folder``; ``subject`` most
    significant first, e.g. ``[("O", "ltrr"), ("CN", "ltrr local CA")]``."""
    folder.mkdir(parents=True, exist_ok=True)
    pair = Pair(folder / "ca.pem", folder / "ca-key.pem")
    config = folder / "ca.cnf"
    config.write_text(_CA_CONFIG.format(dn=_dn_lines(subject)))
    _key(pair.key, folder)
    _run(
        [
            *("req", "-x509", "-new", "-key", str(pair.key), "-config", str(config)),
            *("-sha256", "-days", str(DAYS), "-set_serial", _serial(), "-out", str(pair.cert)),
        ],
        folder,
    )
    config.unlink()
    return pair


def make_cert(
    ca: Pair,
    folder: Path,
    name: str,
    subject: Sequence[tuple[str, str]],
    *,
    server: bool,
    hosts: Sequence[str] = (),
) -> Pair:
    """``{name}.pem`` and ``{name}-key.pem`` signed by ``ca``: a server certificate (for
    ``hosts``, IP addresses or DNS names; usable as a client too, as a node's transport needs)
    or a client-only one (an admin's)."""
    pair = Pair(folder / f"{name}.pem", folder / f"{name}-key.pem")
    request_config = folder / f"{name}.cnf"
    request_config.write_text(
        f"[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n{_dn_lines(subject)}\n"
    )
    names = [f"{'IP' if _is_ip(h) else 'DNS'}:{h}" for h in hosts]
    extensions = folder / f"{name}.ext"
    extensions.write_text(
        _LEAF_EXTENSIONS.format(
            usage="serverAuth, clientAuth" if server else "clientAuth",
            alt=f"subjectAltName = {', '.join(names)}" if names else "",
        )
    )
    csr = folder / f"{name}.csr"
    _key(pair.key, folder)
    _run(
        ["req", "-new", "-key", str(pair.key), "-config", str(request_config), "-out", str(csr)],
        folder,
    )
    _run(
        [
            *("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key)),
            *("-set_serial", _serial(), "-days", str(DAYS), "-sha256"),
            *("-extfile", str(extensions), "-extensions", "leaf", "-out", str(pair.cert)),
        ],
        folder,
    )
    for scratch in (request_config, extensions, csr):
        scratch.unlink()
    return pair


def _serial() -> str:
    return "0x" + secrets.token_hex(16)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def rfc2253(subject: Sequence[tuple[str, str]]) -> str:
    """The distinguished name as the security plugin compares it: least significant first."""
    return ",".join(f"{key}={value}" for key, value in reversed(subject))
