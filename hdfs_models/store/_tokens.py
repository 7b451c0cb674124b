"""Hadoop delegation token files (``HADOOP_TOKEN_FILE_LOCATION``) and MIT ticket caches, read-only. Pure but for file reads.

YARN, Spark on Kubernetes and ``hdfs fetchdt`` hand a process its HDFS
credentials as a *token storage file*: the magic ``HDTS``, a format byte
(``0`` Writable, ``1`` protobuf) and a list of ``(alias, token)`` pairs, each
token being ``(identifier, password, kind, service)``. Hadoop names an HDFS
token's service after the NameNode's resolved address (``127.0.0.1:8020``;
``hadoop.security.token.service.use_ip`` is on by default), or
``ha-hdfs:<nameservice>`` for an HA nameservice. hdfs-native picks a token
only when its service equals the URL's ``host:port`` as written, so a URL
with a host name misses a token issued for the address: :func:`token_address`
finds the address to dial instead, as Hadoop's own client does.

:func:`ccache_principal` reads the default principal of a ``FILE:`` ticket
cache, so an authentication error can name whom the caller was.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import struct
from collections.abc import Callable, Iterable

__all__ = [
    "HDFS_TOKEN_KIND",
    "Token",
    "Ticket",
    "ccache_principal",
    "ccache_tickets",
    "encode_text",
    "encode_vlong",
    "parse_token_storage",
    "read_token_file",
    "token_address",
    "token_for",
]

HDFS_TOKEN_KIND = "HDFS_DELEGATION_TOKEN"
_MAGIC = b"HDTS"


@dataclasses.dataclass(frozen=True)
class Token:
    """One delegation token of a token storage file."""

    alias: str
    kind: str
    service: str
    identifier: bytes = dataclasses.field(repr=False)
    password: bytes = dataclasses.field(repr=False)

    @property
    def owner(self) -> str | None:
        """The principal the token acts for (a Writable delegation token identifier), else None."""
        try:
            reader = _Reader(self.identifier)
            reader.byte()  # identifier version
            return reader.text() or None
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def max_date(self) -> float | None:
        """The token's absolute end of life (``maxDate``, seconds since the epoch) from a Writable
        delegation token identifier (version, owner, renewer, real user, issue date, max date), else None."""
        try:
            reader = _Reader(self.identifier)
            reader.byte()
            for _ in range(3):
                reader.text()
            reader.vlong()  # issue date
            value = reader.vlong()
        except (ValueError, UnicodeDecodeError):
            return None
        return value / 1000.0 if value > 0 else None

    def url_string(self) -> str:
        """Hadoop's ``Token.encodeToUrlString()``: the value of WebHDFS's ``delegation=`` parameter."""
        raw = b"".join(
            [
                encode_vlong(len(self.identifier)),
                self.identifier,
                encode_vlong(len(self.password)),
                self.password,
                encode_text(self.kind),
                encode_text(self.service),
            ]
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class _Reader:
    """Hadoop Writable primitives over bytes; ValueError on truncation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"truncated: needs {n} bytes at offset {self.pos} of {len(self.data)}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def vlong(self) -> int:
        """``WritableUtils.readVLong``: one byte for -112..127, else a length byte and big-endian bytes."""
        first = struct.unpack("b", self.take(1))[0]
        if first >= -112:
            return int(first)
        negative = first < -120
        size = -(first + 120) if negative else -(first + 112)
        value = int.from_bytes(self.take(size), "big")
        return ~value if negative else value

    def text(self) -> str:
        return self.take(self.vlong()).decode("utf-8")

    def varint(self) -> int:
        """A protobuf base-128 varint."""
        shift = value = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def encode_vlong(value: int) -> bytes:
    """``WritableUtils.writeVLong`` (the inverse of :meth:`_Reader.vlong`)."""
    if -112 <= value <= 127:
        return struct.pack("b", value)
    marker = -112
    if value < 0:
        value, marker = ~value, -120
    size = (value.bit_length() + 7) // 8
    return struct.pack("b", marker - size) + value.to_bytes(size, "big")


def encode_text(value: str) -> bytes:
    """Hadoop's ``Text`` serialisation: a vlong length, then the UTF-8 bytes."""
    raw = value.encode("utf-8")
    return encode_vlong(len(raw)) + raw


def parse_token_storage(data: bytes) -> list[Token]:
    """The tokens of a token storage file's bytes (either format). Raises ValueError if it is not one."""
    if data[:4] != _MAGIC or len(data) < 5:
        raise ValueError("not a Hadoop token storage file (no HDTS header)")
    if data[4] == 0:
        return _parse_writable(_Reader(data[5:]))
    if data[4] == 1:
        return _parse_protobuf(data[5:])
    raise ValueError(f"unknown token storage format {data[4]}")


def _parse_writable(reader: _Reader) -> list[Token]:
    tokens = []
    for _ in range(reader.vlong()):
        alias = reader.text()
        identifier = reader.take(reader.vlong())
        password = reader.take(reader.vlong())
        kind, service = reader.text(), reader.text()
        tokens.append(Token(alias, kind, service, identifier, password))
    return tokens  # secret keys follow; a client has no use for them


def _fields(data: bytes) -> Iterable[tuple[int, bytes | int]]:
    """(field number, value) of a protobuf message: bytes for length-delimited, int for varints."""
    reader = _Reader(data)
    while not reader.done:
        key = reader.varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, reader.varint()
        elif wire == 2:
            yield number, reader.take(reader.varint())
        elif wire in (1, 5):
            reader.take(8 if wire == 1 else 4)
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _parse_protobuf(data: bytes) -> list[Token]:
    """A length-delimited ``CredentialsProto``: tokens = 1 (``CredentialsKVProto``: alias 1, token 2)."""
    reader = _Reader(data)
    message = reader.take(reader.varint())
    tokens = []
    for number, kv in _fields(message):
        if number != 1 or not isinstance(kv, bytes):
            continue
        entry = {n: v for n, v in _fields(kv) if isinstance(v, bytes)}
        proto = {n: v for n, v in _fields(entry.get(2, b"")) if isinstance(v, bytes)}
        tokens.append(
            Token(
                entry.get(1, b"").decode(),
                proto.get(3, b"").decode(),
                proto.get(4, b"").decode(),
                proto.get(1, b""),
                proto.get(2, b""),
            )
        )
    return tokens


def read_token_file(path: str) -> list[Token]:
    """The tokens in ``path``. Raises OSError if unreadable, ValueError naming ``path`` if malformed."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        return parse_token_storage(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def token_for(tokens: Iterable[Token], service: str, kinds: Iterable[str] = (HDFS_TOKEN_KIND,)) -> Token | None:
    """The first token of one of ``kinds`` whose service is exactly ``service``."""
    wanted = set(kinds)
    return next((t for t in tokens if t.kind in wanted and t.service == service), None)


def _resolve(host: str) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
    except OSError:
        return []


def token_address(
    host: str,
    port: int,
    tokens: Iterable[Token],
    kinds: Iterable[str] = (HDFS_TOKEN_KIND,),
    resolve: Callable[[str], list[str]] = _resolve,
) -> str | None:
    """The host to dial so that a token's service matches ``host:port``, or None if no token does.

    ``host`` itself when a token names ``host:port``; else the first resolved
    address ``ip`` of ``host`` with a token for ``ip:port``.
    """
    tokens, kinds = list(tokens), tuple(kinds)
    if token_for(tokens, f"{host}:{port}", kinds):
        return host
    for address in resolve(host):
        if token_for(tokens, f"{address}:{port}", kinds):
            return address
    return None


def ccache_principal(ccname: str | None, uid: int | None = None) -> str | None:
    """The default principal of an MIT ``FILE:`` ticket cache (``KRB5CCNAME``), or None.

    ``None`` for ``ccname`` means MIT's default, ``/tmp/krb5cc_<uid>``. Other
    cache types (``KCM:``, ``KEYRING:``) and unreadable files give None.
    """
    if not ccname:
        ccname = f"FILE:/tmp/krb5cc_{os.getuid() if uid is None else uid}"
    kind, sep, path = ccname.partition(":")
    if not sep:
        path = ccname
    elif kind.upper() != "FILE":
        return None
    try:
        with open(path, "rb") as fh:
            return _ccache_default_principal(fh.read(4096))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _ccache_default_principal(data: bytes) -> str:
    """Versions 0x0503/0x0504: [header], name type, component count, realm, components (32-bit lengths)."""
    reader = _Reader(data)
    _ccache_header(reader)
    return _principal(reader)


def _ccache_header(reader: _Reader) -> int:
    version = int.from_bytes(reader.take(2), "big")
    if version not in (0x0503, 0x0504):
        raise ValueError(f"unsupported ccache version {version:#x}")
    if version == 0x0504:
        reader.take(int.from_bytes(reader.take(2), "big"))
    return version


def _u32(reader: _Reader) -> int:
    return int.from_bytes(reader.take(4), "big")


def _octets(reader: _Reader) -> bytes:
    return reader.take(_u32(reader))


def _principal(reader: _Reader) -> str:
    reader.take(4)  # name type
    count = _u32(reader)
    realm = _octets(reader).decode()
    return "/".join(_octets(reader).decode() for _ in range(count)) + "@" + realm


@dataclasses.dataclass(frozen=True)
class Ticket:
    """One credential of a ticket cache: whose, for which service, valid until ``end`` (epoch seconds),
    renewable until ``renew_till`` (0: not renewable)."""

    client: str
    server: str
    end: float
    renew_till: float


def ccache_tickets(ccname: str | None, uid: int | None = None) -> list[Ticket]:
    """The tickets of an MIT ``FILE:`` ticket cache (``[]`` for other cache types or an unreadable file).

    Each credential: client and server principals, the key block, four
    times (auth, start, end, renew till), flags, addresses, authorization
    data, the ticket and a second ticket. Configuration entries
    (``X-CACHECONF:``) are skipped.
    """
    if not ccname:
        ccname = f"FILE:/tmp/krb5cc_{os.getuid() if uid is None else uid}"
    kind, sep, path = ccname.partition(":")
    if sep and kind.upper() != "FILE":
        return []
    try:
        with open(path if sep else ccname, "rb") as fh:
            reader = _Reader(fh.read())
        version = _ccache_header(reader)
        _principal(reader)
        tickets = []
        while not reader.done:
            client, server = _principal(reader), _principal(reader)
            reader.take(2 if version == 0x0504 else 4)  # enctype (twice in 0x0503)
            _octets(reader)  # the session key
            _auth, _start, end, renew_till = (_u32(reader) for _ in range(4))
            reader.take(5)  # is_skey, flags
            for _ in range(2):  # addresses, authorization data: (type, octets) pairs
                for _ in range(_u32(reader)):
                    reader.take(2)
                    _octets(reader)
            _octets(reader)
            _octets(reader)
            if "X-CACHECONF:" not in server:
                tickets.append(Ticket(client, server, float(end), float(renew_till)))
        return tickets
    except (OSError, ValueError, UnicodeDecodeError):
        return []
