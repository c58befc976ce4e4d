"""Who is calling: OAuth2 password flow with signed bearer tokens, and API keys.

* Passwords are kept as scrypt hashes (RFC 7914; N=2**14, r=8, p=1, 16-byte salt).
* Bearer tokens are JWTs (RFC 7519) signed with HS256 under the ``[api] jwt_secret``;
  claims ``sub`` (user id), ``name``, ``role``, ``cid`` (customer), ``vid`` (vendor),
  ``iat``, ``exp``.
* API keys look like ``msk_<prefix>_<secret>``; only the SHA-256 of the whole key is kept,
  looked up by its prefix and compared in constant time. A key is shown once.

Roles: ``admin`` (everything), ``operator`` (the utility's staff: meters, commands,
tariffs, reversals, reconciliation), ``vendor`` (sells from its own float) and ``customer``
(reads its own meters, accounts, vends and bills only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from meterstack.core.errors import ConfigError, InvalidInputError

__all__ = [
    "ROLES",
    "Principal",
    "decode_access_token",
    "hash_api_key",
    "hash_password",
    "issue_access_token",
    "load_or_create_secret",
    "new_api_key",
    "split_api_key",
    "verify_password",
]

ROLES = ("admin", "operator", "vendor", "customer")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """The caller of a request."""

    kind: str  # "user" or "key"
    id: int
    name: str
    role: str
    customer_id: int | None = None
    vendor_id: int | None = None

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return f"{self.kind}:{self.name}"

    @property
    def rate_key(self) -> str:
        return f"{self.kind}:{self.id}"


def hash_password(password: str) -> str:
    if not password or len(password) < 8:
        raise InvalidInputError("password", "<hidden>", "at least 8 characters")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), **_SCRYPT, dklen=32)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def issue_access_token(principal: Principal, secret: bytes, now: datetime, ttl_s: int) -> str:
    claims: dict[str, Any] = {
        "sub": str(principal.id),
        "name": principal.name,
        "role": principal.role,
        "cid": principal.customer_id,
        "vid": principal.vendor_id,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def decode_access_token(token: str, secret: bytes) -> Principal | None:
    """The principal of a valid, unexpired token; None otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["exp"]})
        role = claims["role"]
        if role not in ROLES:
            return None
        return Principal(
            "user",
            int(claims["sub"]),
            str(claims["name"]),
            role,
            claims.get("cid"),
            claims.get("vid"),
        )
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


def new_api_key() -> tuple[str, str]:
    """A new key and its prefix."""
    prefix = secrets.token_hex(6)
    return f"msk_{prefix}_{secrets.token_urlsafe(32)}", prefix


def split_api_key(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "msk" or len(parts[1]) != 12:
        return None
    return parts[1]


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_or_create_secret(path: Path, nbytes: int) -> bytes:
    """Read a hex secret from ``path``, or create a random one there (mode 0600)."""
    try:
        if path.exists():
            return bytes.fromhex(path.read_text().strip())
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_bytes(nbytes)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value.hex())
            handle.flush()
            os.fsync(handle.fileno())
        return value
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"secret file {path} cannot be read or created ({exc})") from exc
