"""Standard Webhooks signatures (https://www.standardwebhooks.com/): a ``whsec_`` secret per
endpoint, and the three headers every signed delivery carries."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
# The spec asks for 24 to 64 random bytes.
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` (integer seconds) and ``webhook-signature``
    (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``)."""
    signature = Webhook(secret).sign(message_id, at, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
