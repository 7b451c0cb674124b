"""Credentials without a KDC: token files, ticket caches, identities and StoreAuthError (K1-K4, K8).

The real-KDC versions of these rows are in integration/test_kerberos_*.py;
here the file formats and the decisions are checked against bytes built by
hand, so every branch runs in milliseconds.
"""

from __future__ import annotations

import base64
import struct

import pytest

from hdfs_models.errors import StoreAuthError, StoreError, StorePermissionError
from hdfs_models.store._auth import auth_error, auth_failure, dial_host, identity, load_tokens
from hdfs_models.store._open import open_store, translate_errors
from hdfs_models.store._tokens import (
    HDFS_TOKEN_KIND,
    Token,
    _Reader,
    ccache_principal,
    encode_vlong,
    parse_token_storage,
    read_token_file,
    token_address,
)
from hdfs_models.testing.pytest_plugin import require_module
from hdfs_models.testing.tokens import protobuf_token_file, writable_token_file


@pytest.mark.parametrize("value", [0, 1, 127, -1, -112, -113, 128, 255, 256, 65535, 1 << 40, -1000])
def test_vlong_round_trips_like_hadoops_writableutils(value):
    assert _Reader(encode_vlong(value)).vlong() == value
    assert len(encode_vlong(value)) == (1 if -112 <= value <= 127 else 1 + (max(value, ~value).bit_length() + 7) // 8)


def test_writable_token_file_gives_kind_service_and_owner():
    data = writable_token_file(
        (HDFS_TOKEN_KIND, "127.0.0.1:8020", "alice@EXAMPLE.COM"), ("kms-dt", "kms:9600", "alice")
    )
    tokens = parse_token_storage(data)
    assert [(t.kind, t.service, t.owner) for t in tokens] == [
        (HDFS_TOKEN_KIND, "127.0.0.1:8020", "alice@EXAMPLE.COM"),
        ("kms-dt", "kms:9600", "alice"),
    ]
    assert tokens[0].password == b"secret-alice@EXAMPLE.COM"


def test_protobuf_token_file_parses_too():
    (token,) = parse_token_storage(protobuf_token_file(HDFS_TOKEN_KIND, "ha-hdfs:ns1", "bob@EXAMPLE.COM"))
    assert (token.alias, token.kind, token.service, token.owner, token.password) == (
        "ha-hdfs:ns1",
        HDFS_TOKEN_KIND,
        "ha-hdfs:ns1",
        "bob@EXAMPLE.COM",
        b"pw",
    )


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "no HDTS header"),
        (b"JUNKJUNK", "no HDTS header"),
        (b"HDTS\x07", "unknown token storage format 7"),
        (b"HDTS\x00\x02\x05abc", "truncated"),
    ],
)
def test_malformed_token_files_are_value_errors(tmp_path, data, match):
    path = tmp_path / "t.token"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match) as info:
        read_token_file(str(path))
    assert str(path) in str(info.value)


def test_url_string_is_hadoops_encoding():
    token = Token("a", HDFS_TOKEN_KIND, "127.0.0.1:9870", b"\x01" * 200, b"pw")
    encoded = token.url_string()
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    raw = _Reader(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert raw.take(raw.vlong()) == b"\x01" * 200 and raw.take(raw.vlong()) == b"pw"
    assert (raw.text(), raw.text(), raw.done) == (HDFS_TOKEN_KIND, "127.0.0.1:9870", True)


def test_token_address_resolves_a_host_name_to_the_tokens_ip():  # K3
    tokens = parse_token_storage(writable_token_file((HDFS_TOKEN_KIND, "127.0.0.1:8020", "alice")))
    resolve = {"localhost": ["::1", "127.0.0.1"], "other": ["10.0.0.9"]}.get
    assert token_address("127.0.0.1", 8020, tokens, resolve=lambda h: resolve(h, [])) == "127.0.0.1"
    assert token_address("localhost", 8020, tokens, resolve=lambda h: resolve(h, [])) == "127.0.0.1"
    assert token_address("other", 8020, tokens, resolve=lambda h: resolve(h, [])) is None
    assert token_address("localhost", 9000, tokens, resolve=lambda h: resolve(h, [])) is None
    assert dial_host("hdfs", "nn.example", 8020, []) == "nn.example"
    assert dial_host("viewfs", "cluster", None, tokens) == "cluster"


def _ccache(principal: tuple[str, ...], realm: str, version: int = 0x0504) -> bytes:
    out = struct.pack(">H", version)
    if version == 0x0504:
        out += struct.pack(">H", 12) + b"\x00\x01\x00\x08" + b"\x00" * 8
    out += struct.pack(">II", 1, len(principal)) + struct.pack(">I", len(realm)) + realm.encode()
    for part in principal:
        out += struct.pack(">I", len(part)) + part.encode()
    return out + b"credentials follow"


def test_ccache_principal_reads_file_caches(tmp_path):
    v4, v3 = tmp_path / "v4", tmp_path / "v3"
    v4.write_bytes(_ccache(("alice",), "EXAMPLE.COM"))
    v3.write_bytes(_ccache(("hdfs", "nn1.example"), "CORP", version=0x0503))
    assert ccache_principal(f"FILE:{v4}") == "alice@EXAMPLE.COM"
    assert ccache_principal(str(v3)) == "hdfs/nn1.example@CORP"
    assert ccache_principal(f"FILE:{tmp_path / 'missing'}") is None
    assert ccache_principal("KCM:0") is None
    (tmp_path / "junk").write_bytes(b"\x01\x02junk")
    assert ccache_principal(f"FILE:{tmp_path / 'junk'}") is None


GSS_NO_CRED = RuntimeError(
    'GSSAPIError(GssMajorCodes { raw: "0x00070000", routine_error: "GSS_S_NO_CRED" }, 2529639053, '
    '"No credentials were supplied: No Kerberos credentials available (default cache: FILE:/tmp/x)")'
)
GSS_EXPIRED = RuntimeError(
    'GSSAPIError(..., "Unspecified GSS failure.  Minor code may provide more information: Ticket expired")'
)
GSS_SKEW = RuntimeError(
    'GSSAPIError(..., "Unspecified GSS failure.  Minor code may provide more information: '
    'Clock skew too great (KRB_AP_ERR_SKEW)")'
)
INVALID_TOKEN = RuntimeError(
    "RemoteException: org.apache.hadoop.security.token.SecretManager$InvalidToken: "
    "token (HDFS_DELEGATION_TOKEN token 7 for alice) can't be found in cache\n\tat x"
)


@pytest.mark.parametrize(
    "exc, reason",
    [
        (GSS_NO_CRED, "no credentials"),
        (GSS_EXPIRED, "expired"),
        (GSS_SKEW, "clock skew"),
        (RuntimeError("KrbException: Clock skew too great (37) - PROCESS_TGS"), "clock skew"),
        (INVALID_TOKEN, "token refused"),
        (OSError("401 Client Error: Authentication required for url"), "no credentials"),
        (RuntimeError("AccessControlException: Permission denied: user=bob"), None),
        (OSError("Connection refused"), None),
    ],
)
def test_auth_failure_classifies_backend_text(exc, reason):
    assert auth_failure(exc) == reason


def test_no_ticket_names_url_cache_principal_and_kinit(tmp_path):  # K1
    cache = tmp_path / "cc"
    cache.write_bytes(_ccache(("alice",), "EXAMPLE.COM"))
    err = auth_error("hdfs://nn:8020/m", GSS_NO_CRED, "no credentials", env={"KRB5CCNAME": f"FILE:{cache}"})
    text = str(err)
    assert isinstance(err, StoreAuthError) and isinstance(err, StoreError) and not isinstance(err, PermissionError)
    assert text.startswith("hdfs://nn:8020/m: authentication failed: no valid Kerberos ticket in FILE:")
    assert "kinit alice@EXAMPLE.COM" in text and "HADOOP_TOKEN_FILE_LOCATION" in text and "\n" not in text
    assert (err.principal, err.reason, err.url) == ("alice@EXAMPLE.COM", "no credentials", "hdfs://nn:8020/m")


def test_expired_ticket_says_expired(tmp_path):  # K2
    cache = tmp_path / "cc"
    cache.write_bytes(_ccache(("bob",), "EXAMPLE.COM"))
    err = auth_error("hdfs://nn:8020/m", GSS_EXPIRED, "expired", env={"KRB5CCNAME": str(cache)})
    assert "the Kerberos ticket of bob@EXAMPLE.COM" in str(err) and "has expired; run kinit bob@EXAMPLE.COM" in str(err)


def test_clock_skew_is_an_auth_error_that_says_clock_skew(tmp_path):  # P7
    cache = tmp_path / "cc"
    cache.write_bytes(_ccache(("bob",), "EXAMPLE.COM"))
    for options in ({}, {"kerberos_keytab": "/etc/security/bob.keytab"}):
        err = auth_error("hdfs://nn:8020/m", GSS_SKEW, "clock skew", options, env={"KRB5CCNAME": str(cache)})
        assert isinstance(err, StoreAuthError) and err.reason == "clock skew"
        assert "refused bob@EXAMPLE.COM's request for clock skew" in str(err) and "sync this host's clock" in str(err)


def test_token_without_a_match_names_the_file_and_what_it_holds(tmp_path):  # K4
    path = tmp_path / "t.token"
    path.write_bytes(writable_token_file((HDFS_TOKEN_KIND, "10.1.1.1:8020", "alice@EXAMPLE.COM")))
    env = {"HADOOP_TOKEN_FILE_LOCATION": str(path), "KRB5CCNAME": f"FILE:{tmp_path / 'none'}"}
    err = auth_error("hdfs://nn:8020/m", GSS_NO_CRED, "no credentials", env=env)
    assert f"no delegation token for nn:8020 in HADOOP_TOKEN_FILE_LOCATION={path}" in str(err)
    assert "10.1.1.1:8020 (HDFS_DELEGATION_TOKEN)" in str(err) and err.principal == "alice@EXAMPLE.COM"
    refused = auth_error("hdfs://nn:8020/m", INVALID_TOKEN, "token refused", env=env)
    assert f"the delegation token of alice@EXAMPLE.COM in HADOOP_TOKEN_FILE_LOCATION={path} was refused" in str(refused)
    assert "can't be found in cache" in str(refused) and "\tat" not in str(refused)


def test_unreadable_token_file_is_an_auth_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(tmp_path / "gone.token"))
    with pytest.raises(StoreAuthError, match=r"HADOOP_TOKEN_FILE_LOCATION=.*gone.token: no such file"):
        open_store("hdfs://127.0.0.1:9/m")
    (tmp_path / "bad.token").write_bytes(b"not a token")
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(tmp_path / "bad.token"))
    with pytest.raises(StoreAuthError, match="bad.token: not a Hadoop token storage file"):
        load_tokens("webhdfs://nn:9870/m")


def test_translate_errors_gives_auth_errors_before_permission(monkeypatch, tmp_path):
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    with pytest.raises(StoreAuthError, match="hdfs://nn/m: authentication failed: .*kinit"):
        with translate_errors("hdfs://nn/m"):
            raise GSS_NO_CRED
    with pytest.raises(StoreAuthError):
        with translate_errors("webhdfs://nn/m"):
            raise PermissionError("SecretManager$InvalidToken: token expired")
    with pytest.raises(StorePermissionError):
        with translate_errors("hdfs://nn/m"):
            raise RuntimeError("org.apache.hadoop.security.AccessControlException: Permission denied")


def test_identity_keys_the_client_cache(monkeypatch, tmp_path):  # K8
    require_module("hdfs_native", "hdfs")
    for name in ("KRB5CCNAME", "HADOOP_TOKEN_FILE_LOCATION", "KRB5_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    plain, _ = open_store("hdfs://127.0.0.1:9/m")
    monkeypatch.setenv("KRB5CCNAME", "FILE:/tmp/alice")
    alice, _ = open_store("hdfs://127.0.0.1:9/m")
    monkeypatch.setenv("KRB5CCNAME", "FILE:/tmp/bob")
    bob, _ = open_store("hdfs://127.0.0.1:9/m")
    token = tmp_path / "t.token"
    token.write_bytes(writable_token_file((HDFS_TOKEN_KIND, "127.0.0.1:9", "carol")))
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(token))
    carol, _ = open_store("hdfs://127.0.0.1:9/m")
    assert len({id(plain), id(alice), id(bob), id(carol)}) == 4
    monkeypatch.setenv("KRB5CCNAME", "FILE:/tmp/alice")
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", "")
    assert open_store("hdfs://127.0.0.1:9/m")[0] is alice  # "" is unset, as in hdfs-native
    assert identity({"KRB5CCNAME": "", "KRB5_CONFIG": "/k"})["KRB5_CONFIG"] == "/k"


def test_credentials_renewed_in_place_get_a_new_client_p2(monkeypatch, tmp_path):
    """A token file rewritten at the same path (a Kubernetes secret refresh) or a new ticket in the
    same cache (kinit) reaches the next store call: a client that reads it again, no restart."""
    require_module("hdfs_native", "hdfs")
    token, ccache = tmp_path / "t.token", tmp_path / "cc"
    token.write_bytes(writable_token_file((HDFS_TOKEN_KIND, "127.0.0.1:9", "carol")))
    ccache.write_bytes(_ccache(("carol",), "EXAMPLE.COM"))
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(token))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    first, _ = open_store("hdfs://127.0.0.1:9/m")
    assert open_store("hdfs://127.0.0.1:9/m")[0] is first  # unchanged files: the same client
    token.write_bytes(writable_token_file((HDFS_TOKEN_KIND, "127.0.0.1:9", "carol"), (HDFS_TOKEN_KIND, "x:1", "c")))
    renewed, _ = open_store("hdfs://127.0.0.1:9/m")
    assert renewed is not first and open_store("hdfs://127.0.0.1:9/m")[0] is renewed
    ccache.write_bytes(_ccache(("carol",), "EXAMPLE.COM") + b"\0")  # kinit rewrote the cache
    assert open_store("hdfs://127.0.0.1:9/m")[0] is not renewed


def test_host_name_url_dials_the_tokens_address(monkeypatch, tmp_path):  # K3
    require_module("hdfs_native", "hdfs")
    token = tmp_path / "t.token"
    token.write_bytes(writable_token_file((HDFS_TOKEN_KIND, "127.0.0.1:9", "alice")))
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(token))
    fs, path = open_store("hdfs://localhost:9/models/m")
    assert (fs.host, fs.port, path) == ("127.0.0.1", 9, "/models/m")
    monkeypatch.delenv("HADOOP_TOKEN_FILE_LOCATION")
    assert open_store("hdfs://localhost:9/models/m")[0].host == "localhost"


def test_keytab_login_options_reach_the_client(tmp_path):
    require_module("hdfs_native", "hdfs")
    with pytest.raises(StoreAuthError, match=r"cannot log in alice@EX from keytab .*none.keytab: no such file"):
        open_store(
            "hdfs://127.0.0.1:9/m", {"kerberos_principal": "alice@EX", "kerberos_keytab": str(tmp_path / "none.keytab")}
        )
    keytab = tmp_path / "alice.keytab"
    keytab.write_bytes(b"\x05\x02")
    fs, _ = open_store("hdfs://127.0.0.1:9/m", {"kerberos_principal": "alice@EX", "kerberos_keytab": str(keytab)})
    other, _ = open_store("hdfs://127.0.0.1:9/m")
    assert fs is not other and fs.client is not other.client


def test_webhdfs_uses_a_token_for_its_address_else_spnego_when_configured(monkeypatch, tmp_path):
    token = tmp_path / "t.token"
    token.write_bytes(writable_token_file((HDFS_TOKEN_KIND, "127.0.0.1:9870", "alice")))
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(token))
    fs, _ = open_store("webhdfs://localhost:9870/m")
    assert fs.pars["delegation"] == parse_token_storage(token.read_bytes())[0].url_string()
    monkeypatch.delenv("HADOOP_TOKEN_FILE_LOCATION")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "core-site.xml").write_text(
        "<configuration><property><name>hadoop.security.authentication</name>"
        "<value>kerberos</value></property></configuration>"
    )
    monkeypatch.setenv("HADOOP_CONF_DIR", str(conf))
    require_module("requests_kerberos", "kerberos")
    spnego, _ = open_store("webhdfs://localhost:9870/m")
    assert spnego.kerb is True and "delegation" not in spnego.pars
    assert open_store("webhdfs://localhost:9870/m", {"user": "bob"})[0].kerb is False


def test_an_ended_delegation_token_is_warned_about_with_its_max_date_p2(tmp_path):
    from hdfs_models.store._auth import credential_warnings
    from hdfs_models.testing.tokens import writable_token_file

    path = tmp_path / "tokens"
    path.write_bytes(writable_token_file(("HDFS_DELEGATION_TOKEN", "127.0.0.1:8020", "alice")))
    env = {"HADOOP_TOKEN_FILE_LOCATION": str(path)}
    (warning,) = credential_warnings(3600, env=env, now=1e9)
    assert f"the HDFS delegation token for 127.0.0.1:8020 in {path} expired at 1970-01-01 00:00:00 UTC" in warning
    assert credential_warnings(3600, env={**env, "HADOOP_TOKEN_FILE_LOCATION": str(tmp_path / "nope")}) == []
