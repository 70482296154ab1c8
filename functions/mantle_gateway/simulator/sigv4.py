"""AWS Signature Version 4 verification, written from the published algorithm with hashlib/hmac.

Why not botocore: the gateway signs with botocore, so verifying with botocore would only prove
that botocore agrees with itself. This module rebuilds the canonical request the way the AWS
documentation ("Create a signed AWS API request") describes it, so a header that should not have
been signed, a body that changed after signing or a query string encoded differently is caught
here the way Mantle would catch it.

Rules enforced beyond "the signature matches" (all observed on Mantle, see
reference/mantle-facts.md §2): the credential scope names the right service and region, the
access key is known, `x-amz-date` is present and fresh, `host` is signed, every `x-amz-*` header
on the wire is signed, and `x-amz-content-sha256`, when sent, equals the hash of the body.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "bedrock-mantle"
MAX_CLOCK_SKEW_SECONDS = 300.0

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
_SPACES = re.compile(r" +")


class SignatureError(Exception):
    """Why a request's signature was refused; `str()` is safe to send back to the caller."""


@dataclass(frozen=True, slots=True)
class WireRequest:
    """A request exactly as it arrived: nothing decoded, re-ordered or merged."""

    method: str
    path: str
    """The path as sent on the request line (still percent-encoded), without the query."""
    query: str
    """The raw query string, without the leading `?`."""
    headers: Sequence[tuple[str, str]]
    """Every header line in wire order; names in any case, repeats kept."""
    body: bytes


@dataclass(frozen=True, slots=True)
class Authorization:
    """The parts of an `Authorization: AWS4-HMAC-SHA256 …` header."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def uri_encode(raw: bytes, *, keep_slash: bool) -> str:
    """Percent-encode every byte except RFC 3986 unreserved ones (and `/` in paths)."""
    out = []
    for byte in raw:
        if byte in _UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def canonical_uri(path: str) -> str:
    """Dot segments removed, empty segments collapsed, then encoded once more.

    For every service but S3 the spec encodes the already-encoded path a second time, so a
    `%20` on the wire becomes `%2520` in the canonical request.
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    return uri_encode(normalized.encode(), keep_slash=True)


def canonical_query(query: str) -> str:
    """Each name and value decoded, re-encoded with the SigV4 rules, sorted by name then value."""
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append(
            (
                uri_encode(unquote_to_bytes(name), keep_slash=False),
                uri_encode(unquote_to_bytes(value), keep_slash=False),
            )
        )
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def header_values(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Header values by lower-cased name, repeats kept in wire order."""
    out: dict[str, list[str]] = {}
    for name, value in headers:
        out.setdefault(name.lower(), []).append(value)
    return out


def canonical_headers(values: Mapping[str, list[str]], signed: Sequence[str]) -> str:
    """`name:value\\n` for every signed header; values trimmed, inner runs of spaces collapsed."""
    lines = []
    for name in signed:
        found = values.get(name)
        if found is None:
            raise SignatureError(f"Signed header '{name}' is not present in the request.")
        joined = ",".join(_SPACES.sub(" ", value.strip()) for value in found)
        lines.append(f"{name}:{joined}\n")
    return "".join(lines)


def canonical_request(request: WireRequest, signed: Sequence[str], payload_hash: str) -> str:
    return "\n".join(
        (
            request.method.upper(),
            canonical_uri(request.path),
            canonical_query(request.query),
            canonical_headers(header_values(request.headers), signed),
            ";".join(signed),
            payload_hash,
        )
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def parse_authorization(value: str) -> Authorization:
    """Parse `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` strictly."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(f"Unsupported authorization algorithm; expected {ALGORITHM}.")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"Authorization header component '{part.strip()}' is malformed.")
        fields[key] = item
    missing = [key for key in ("Credential", "SignedHeaders", "Signature") if key not in fields]
    if missing:
        raise SignatureError(f"Authorization header is missing {', '.join(missing)}.")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureError("Credential must be ACCESS_KEY/DATE/REGION/SERVICE/aws4_request.")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if list(signed) != sorted({name.lower() for name in signed}):
        raise SignatureError("SignedHeaders must list unique lower-case names in sorted order.")
    return Authorization(
        access_key=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=signed,
        signature=fields["Signature"],
    )


def verify(
    request: WireRequest,
    *,
    region: str,
    secrets: Mapping[str, str],
    now: float | None = None,
    service: str = SERVICE,
    max_skew: float = MAX_CLOCK_SKEW_SECONDS,
) -> Authorization:
    """Check a SigV4-signed request; return its parsed authorization or raise `SignatureError`.

    `secrets` maps known access key ids to their secret keys; `now` is epoch seconds.
    """
    values = header_values(request.headers)
    raw = values.get("authorization")
    if not raw:
        raise SignatureError("Missing 'authorization' header.")
    auth = parse_authorization(raw[0])
    _check_scope(auth, region=region, service=service)
    secret = secrets.get(auth.access_key)
    if secret is None:
        raise SignatureError("The security token included in the request is invalid.")
    amz_date = _check_date(values, auth, time.time() if now is None else now, max_skew)
    _check_signed_set(values, auth.signed_headers)
    payload_hash = hashlib.sha256(request.body).hexdigest()
    sent_hash = values.get("x-amz-content-sha256")
    if sent_hash is not None and sent_hash[0].strip() != payload_hash:
        raise SignatureError(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    canonical = canonical_request(request, auth.signed_headers, payload_hash)
    to_sign = string_to_sign(amz_date, auth.scope, canonical)
    key = signing_key(secret, auth.date, auth.region, auth.service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth.signature.lower()):
        raise SignatureError(
            "The request signature we calculated does not match the signature you provided. "
            f"The Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{to_sign}'\n"
        )
    return auth


def _check_scope(auth: Authorization, *, region: str, service: str) -> None:
    if auth.service != service:
        raise SignatureError(f"Credential should be scoped to correct service: '{service}'.")
    if auth.region != region:
        raise SignatureError(
            f"Credential should be scoped to a valid region; expected '{region}', "
            f"got '{auth.region}'."
        )


def _check_date(
    values: Mapping[str, list[str]], auth: Authorization, now: float, max_skew: float
) -> str:
    found = values.get("x-amz-date")
    if not found or not _AMZ_DATE.match(found[0].strip()):
        raise SignatureError("Missing or malformed 'x-amz-date' header (YYYYMMDD'T'HHMMSS'Z').")
    amz_date = found[0].strip()
    if amz_date[:8] != auth.date:
        raise SignatureError("Credential date does not match the 'x-amz-date' header.")
    signed_at = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    if abs(now - signed_at) > max_skew:
        raise SignatureError(
            f"Signature expired or not yet valid: {amz_date} is more than "
            f"{int(max_skew)} seconds away from the server time."
        )
    return amz_date


def _check_signed_set(values: Mapping[str, list[str]], signed: Sequence[str]) -> None:
    if "host" not in signed:
        raise SignatureError("'host' must be a signed header.")
    unsigned = sorted(name for name in values if name.startswith("x-amz-") and name not in signed)
    if unsigned:
        raise SignatureError(f"Header(s) {', '.join(unsigned)} must be signed.")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
