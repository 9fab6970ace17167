"""The dashboard's sign-in: an admin key entered once in the page becomes an HttpOnly cookie, so the
key is never in a URL, in the page's storage or in a script's reach.

The cookie holds the key's id, an expiry and an HMAC of both made with the key itself: any worker
process checks it without shared state, and replacing (or removing) the key in server.api_keys
ends its sessions. It is sent only to the dashboard's paths (`Path=/dashboard`), never cross-site
(`SameSite=Strict`), and only over HTTPS when the page was loaded over HTTPS (`Secure`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from http.cookies import CookieError, SimpleCookie

from judge_router.config import ApiKey

COOKIE = "judge_router_dashboard"
PREFIX = "/dashboard"
API_PREFIX = "/dashboard/api/"
SESSION_PATH = "/dashboard/api/session"
SESSION_S = 12 * 3600
_VERSION = "v1"


def is_public(path: str) -> bool:
    """The page and its assets (no data in them), and the sign-in itself: open without a key."""
    return path in (PREFIX, f"{PREFIX}/", SESSION_PATH) or path.startswith(f"{PREFIX}/assets/")


def needs_admin(path: str) -> bool:
    """The dashboard's data: the ledger's whole history, so admin keys only."""
    return path.startswith(API_PREFIX) and path != SESSION_PATH


def _mac(key: ApiKey, key_id: str, expires: int) -> str:
    message = f"judge-router-dashboard:{_VERSION}:{key_id}:{expires}".encode()
    return hmac.new(key.key.encode(), message, hashlib.sha256).hexdigest()


def session_value(key: ApiKey, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + SESSION_S)
    key_id = base64.urlsafe_b64encode(key.id.encode()).decode().rstrip("=")
    return f"{_VERSION}.{key_id}.{expires}.{_mac(key, key.id, expires)}"


def key_of(value: str, keys: Sequence[ApiKey], now: float | None = None) -> ApiKey | None:
    """The key a session cookie was made with, if it is genuine, unexpired and still configured."""
    try:
        version, encoded, expires_text, mac = value.split(".")
        key_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        expires = int(expires_text)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    if version != _VERSION or expires < (now if now is not None else time.time()):
        return None
    found = None
    for key in keys:  # compare with every key of that id: timing says nothing about which
        if key.id == key_id and hmac.compare_digest(_mac(key, key_id, expires), mac):
            found = key
    return found


def cookie_from(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:  # a malformed Cookie header is no session, not an error
                continue
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


def session_key(
    path: str, headers: Iterable[tuple[bytes, bytes]], keys: Sequence[ApiKey]
) -> ApiKey | None:
    """The key of a request's session cookie, on the dashboard's own paths only."""
    if not path.startswith(f"{PREFIX}/"):
        return None
    value = cookie_from(headers)
    return None if value is None else key_of(value, keys)


def set_cookie(value: str, secure: bool, max_age: int = SESSION_S) -> str:
    """The Set-Cookie header's value (max_age 0 ends the session)."""
    flags = f"Path={PREFIX}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={value}; {flags}" + ("; Secure" if secure else "")
