"""Feedback tokens: proof that feedback for a decision comes from the client that received it.

A decision's token is an HMAC of its id under the proxy's secret, returned with the results
(``ext.ltrr.feedback_token``) and required on ``/_ltrr/feedback`` (``X-LTRR-Feedback-Token``).
Knowing, or choosing, a decision id is then not enough to reward arms and write memory under
the proxy's identity. Replicas that take each other's feedback share the secret through
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
        shared = os.environ.get(SECRET_ENV, "")
        if shared:
            return cls(shared.encode())
        path = data_dir / SECRET_FILE
        if not path.is_file():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_hex(32).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        return cls(path.read_bytes().strip())

    def token(self, decision_id: str) -> str:
        return hmac.new(self._secret, decision_id.encode(), hashlib.sha256).hexdigest()[:32]

    def valid(self, decision_id: str, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.token(decision_id), token)
