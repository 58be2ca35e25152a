"""Feedback tokens: proof that feedback for a decision comes from the client that received it.

A decision's token is an HMAC, under the proxy's secret, of its id and a random nonce drawn for
that decision (kept with its record and in ``ltrr-decisions``). It is returned with the first
page only (``ext.ltrr.feedback_token``) and required on ``/_ltrr/feedback``
(``X-LTRR-Feedback-Token``). Knowing, or choosing, a decision id is then not enough to reward
another client's decision: a new search under the same id gets a new nonce, and a token that
only fits its own decision. Replicas that take each other's feedback share the secret through
``LTRR_FEEDBACK_SECRET``; otherwise it is generated once per data directory, so a restart keeps
every open decision's token valid.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_ENV = "LTRR_FEEDBACK_SECRET"
SECRET_FILE = "feedback-secret"
TOKEN_HEADER = "X-LTRR-Feedback-Token"


class FeedbackTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a feedback secret needs at least 16 bytes")
        self._secret = secret

    @classmethod
    def load(cls, data_dir: Path) -> FeedbackTokens:
        return cls(secret(data_dir).encode())

    @staticmethod
    def nonce() -> str:
        return secrets.token_hex(8)

    def token(self, decision_id: str, nonce: str) -> str:
        message = f"{decision_id}\n{nonce}".encode("utf-8", "surrogateescape")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def valid(self, decision_id: str, nonce: str, token: str | None) -> bool:
        if token is None or not token.isascii():  # a header aiohttp could not decode
            return False
        return hmac.compare_digest(self.token(decision_id, nonce).encode(), token.encode())


def secret(data_dir: Path) -> str:
    """``$LTRR_FEEDBACK_SECRET``, else the data directory's own, made once (written to a
    temporary file and renamed, so a crash never leaves an empty one)."""
    shared = os.environ.get(SECRET_ENV, "")
    if shared:
        return shared
    path = data_dir / SECRET_FILE
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        partial = data_dir / f".{SECRET_FILE}.{os.getpid()}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    return path.read_text().strip()
