"""Hadoop token storage files built by hand, for tests that need one without a KDC.

Each token is ``(kind, service, owner)``; its identifier has the shape of
Hadoop's ``AbstractDelegationTokenIdentifier`` (version, owner, renewer ``yarn``,
real user, dates, numbers) and its password is fake, so the files parse like
the ones ``hdfs fetchdt`` or YARN write, and no NameNode accepts them.

- :func:`writable_token_file`: the WRITABLE format (``HDTS`` version 0), any number of tokens;
- :func:`protobuf_token_file`: the PROTOBUF format (``HDTS`` version 1), one token.
"""

from __future__ import annotations

from hdfs_models.store._tokens import encode_text, encode_vlong

__all__ = ["protobuf_token_file", "token_identifier", "writable_token_file"]


def token_identifier(owner: str) -> bytes:
    """A delegation token identifier for ``owner`` (renewer ``yarn``, fixed dates and numbers)."""
    return (
        b"\x00"
        + encode_text(owner)
        + encode_text("yarn")
        + encode_text("")
        + encode_vlong(1)
        + encode_vlong(2)
        + encode_vlong(3)
        + encode_vlong(4)
    )


def writable_token_file(*tokens: tuple[str, str, str]) -> bytes:
    """A WRITABLE token storage file holding ``tokens`` (``(kind, service, owner)`` each), no secret keys."""
    out = b"HDTS\x00" + encode_vlong(len(tokens))
    for kind, service, owner in tokens:
        ident, password = token_identifier(owner), b"secret-" + owner.encode()
        out += encode_text(service) + encode_vlong(len(ident)) + ident + encode_vlong(len(password)) + password
        out += encode_text(kind) + encode_text(service)
    return out + encode_vlong(0)


def _pb_varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _pb(number: int, payload: bytes) -> bytes:
    return _pb_varint(number << 3 | 2) + _pb_varint(len(payload)) + payload


def protobuf_token_file(kind: str, service: str, owner: str) -> bytes:
    """A PROTOBUF token storage file holding one token."""
    token = _pb(1, token_identifier(owner)) + _pb(2, b"pw") + _pb(3, kind.encode()) + _pb(4, service.encode())
    creds = _pb(1, _pb(1, service.encode()) + _pb(2, token))
    return b"HDTS\x01" + _pb_varint(len(creds)) + creds
