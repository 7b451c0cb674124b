"""Who a store client acts as, and authentication failures as :class:`StoreAuthError`.

Identity comes from the environment the way Hadoop's clients take it, read
when a client is created: a ticket cache (``KRB5CCNAME``, ``KRB5_CONFIG``), a
keytab login (storage options ``kerberos_principal`` + ``kerberos_keytab``),
or a delegation token file (``HADOOP_TOKEN_FILE_LOCATION``). Store clients
are cached per :func:`identity`, so a process that changes any of these gets
a new client (RELIABILITY K8).

hdfs-native reports authentication failures as ``RuntimeError`` whose only
structure is GSSAPI's or Java's text; :func:`auth_failure` reads that text
once, here, and :func:`auth_error` turns it into one line naming the URL, the
principal and the fix (K1 no ticket, K2 expired, K4 a refused token).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from hdfs_models.errors import StoreAuthError
from hdfs_models.store._tokens import (
    HDFS_TOKEN_KIND,
    Token,
    ccache_principal,
    ccache_tickets,
    read_token_file,
    token_address,
)

__all__ = [
    "IDENTITY_ENV",
    "KERBEROS_OPTIONS",
    "auth_error",
    "auth_failure",
    "credential_warnings",
    "dial_host",
    "identity",
    "load_tokens",
]

# Read by hdfs-native / MIT Kerberos / requests-kerberos when a client authenticates.
IDENTITY_ENV = ("HADOOP_TOKEN_FILE_LOCATION", "KRB5CCNAME", "KRB5_CONFIG", "KRB5_CLIENT_KTNAME")
# Storage options of hdfs:// and viewfs:// that log in without kinit (passed to hdfs_native.Client).
KERBEROS_OPTIONS = ("kerberos_principal", "kerberos_keytab", "kerberos_cache")

# (text in the backend's error, reason), most specific first.
_MARKERS = (
    ("Ticket expired", "expired"),
    ("GSS_S_CREDENTIALS_EXPIRED", "expired"),
    ("InvalidToken", "token refused"),
    ("DIGEST-MD5", "token refused"),  # SASL with a token whose password the NameNode does not know
    ("GSS_S_NO_CRED", "no credentials"),
    ("No Kerberos credentials", "no credentials"),
    ("Client cannot authenticate via", "no credentials"),
    ("401 Client Error", "no credentials"),
    ("KRB_AP_ERR_SKEW", "clock skew"),
    ("Clock skew too great", "clock skew"),
    ("GSSAPIError", "kerberos failed"),
    ("Keytab", "kerberos failed"),
)


def identity(env: Mapping[str, str] = os.environ) -> dict[str, str | None]:
    """The credential-bearing environment variables (an empty value counts as unset)."""
    return {name: env.get(name) or None for name in IDENTITY_ENV}


def auth_failure(exc: BaseException) -> str | None:
    """``"expired"``, ``"token refused"``, ``"no credentials"``, ``"clock skew"``, ``"kerberos failed"`` or None."""
    text = str(exc)
    return next((reason for marker, reason in _MARKERS if marker in text), None)


def load_tokens(url: str, env: Mapping[str, str] = os.environ) -> list[Token]:
    """The tokens of ``HADOOP_TOKEN_FILE_LOCATION`` (none if unset).

    A set but unreadable or malformed file is a :class:`StoreAuthError`
    naming it, as in Hadoop's own clients, rather than silently no token.
    """
    path = env.get("HADOOP_TOKEN_FILE_LOCATION")
    if not path:
        return []
    try:
        return read_token_file(path)
    except FileNotFoundError as exc:
        why = "no such file"
        cause: BaseException = exc
    except OSError as exc:
        why, cause = f"cannot read it ({exc.strerror})", exc
    except ValueError as exc:
        why, cause = str(exc).removeprefix(f"{path}: "), exc
    raise StoreAuthError(
        f"{url}: HADOOP_TOKEN_FILE_LOCATION={path}: {why}; point it at the delegation token "
        "file YARN or spark-submit wrote, or unset it and kinit",
        url=url,
        reason="token file unreadable",
        token_file=path,
        principal=None,
    ) from cause


def dial_host(scheme: str, host: str | None, port: int | None, tokens: list[Token]) -> str | None:
    """The host an hdfs-native client should dial for ``host:port`` so that its token is found.

    hdfs-native uses a token only when its service equals ``host:port`` as
    written; Hadoop names it after the resolved address (K3). Returns
    ``host`` unchanged when no token matches either way.
    """
    if scheme != "hdfs" or not host or not port or not tokens:
        return host
    return token_address(host, port, tokens) or host


def _services(url: str, tokens: list[Token]) -> str:
    listed = sorted({f"{t.service} ({t.kind})" for t in tokens})
    return ", ".join(listed) if listed else "no tokens"


def _principal(options: Mapping[str, Any], env: Mapping[str, str], tokens: list[Token]) -> str | None:
    if options.get("kerberos_principal"):
        return str(options["kerberos_principal"])
    owners = [t.owner for t in tokens if t.owner]
    if owners:
        return owners[0]
    return ccache_principal(options.get("kerberos_cache") or env.get("KRB5CCNAME"))


def auth_error(
    url: str,
    exc: BaseException,
    reason: str,
    options: Mapping[str, Any] | None = None,
    env: Mapping[str, str] = os.environ,
) -> StoreAuthError:
    """One line: the URL, who the caller was, what failed and the fix (``kinit`` / the token file)."""
    options = options or {}
    token_file = env.get("HADOOP_TOKEN_FILE_LOCATION") or None
    try:
        tokens = read_token_file(token_file) if token_file else []
    except (OSError, ValueError):
        tokens = []
    principal = _principal(options, env, tokens)
    ccache = options.get("kerberos_cache") or env.get("KRB5CCNAME") or f"FILE:/tmp/krb5cc_{os.getuid()}"
    who = principal or "no principal"
    detail = _detail(exc)
    if reason == "clock skew":
        fix = (
            f"the KDC refused {who}'s request for clock skew ({detail}): this host's clock and the KDC's "
            "differ by more than the allowed skew (5 minutes by default); sync this host's clock "
            "(chronyc tracking / timedatectl), then retry"
        )
    elif options.get("kerberos_keytab") and reason != "token refused":
        fix = (
            f"could not log in {who} from keytab {options['kerberos_keytab']} ({detail}); "
            f"check it with klist -kt, or kinit {who}"
        )
    elif reason == "expired":
        fix = f"the Kerberos ticket of {who} in {ccache} has expired; run kinit {who} (kinit -R while renewable)"
    elif reason == "token refused":
        fix = (
            f"the delegation token of {who} in HADOOP_TOKEN_FILE_LOCATION={token_file} was refused "
            f"({detail}): it is for another cluster or user, expired or cancelled; get a fresh token "
            "file, or unset HADOOP_TOKEN_FILE_LOCATION and kinit"
        )
    elif token_file:
        fix = (
            f"no delegation token for {_authority(url)} in HADOOP_TOKEN_FILE_LOCATION={token_file} "
            f"(it holds {_services(url, tokens)}) and no valid ticket in {ccache}; use a token file "
            f"issued by this cluster, or run kinit {principal or '<principal>'}"
        )
    else:
        fix = (
            f"no valid Kerberos ticket in {ccache} (principal: {who}) and no delegation token "
            f"(HADOOP_TOKEN_FILE_LOCATION is not set); run kinit {principal or '<principal>'} "
            "or set HADOOP_TOKEN_FILE_LOCATION to a delegation token file"
        )
    return StoreAuthError(
        f"{url}: authentication failed: {fix}",
        url=url,
        reason=reason,
        principal=principal,
        token_file=token_file,
    )


def _authority(url: str) -> str:
    return urlsplit(url).netloc or url


def _detail(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split("\n\tat ", 1)[0].split()) or type(exc).__name__
    for marker in ("Minor code may provide more information: ", "InvalidToken: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def credential_warnings(within: float, env: Mapping[str, str] = os.environ, now: float | None = None) -> list[str]:
    """Sentences for this process's credentials that end within ``within`` seconds (P2); ``[]`` if none.

    The Kerberos ticket-granting ticket of the ``FILE:`` cache ``KRB5CCNAME``
    names (its end, and whether ``kinit -R`` can extend it), and the HDFS
    delegation tokens of ``HADOOP_TOKEN_FILE_LOCATION`` (their ``maxDate``,
    past which no renewal helps). An ended one says so: its store calls fail
    as K2. ``within=float("inf")``: every credential that ends at all (a
    ``--watch`` job runs until stopped). A keytab login renews itself and is
    never warned about.
    """
    now = time.time() if now is None else now
    out = []
    ccname = env.get("KRB5CCNAME")
    # the named cache; MIT's default one only where no token file stands in for a ticket (YARN)
    tickets = ccache_tickets(ccname) if ccname or not env.get("HADOOP_TOKEN_FILE_LOCATION") else []
    for ticket in tickets:
        if not ticket.server.startswith("krbtgt/") or ticket.end - now > within:
            continue
        renew = (
            f"; renewable until {_when(ticket.renew_till)}: run kinit -R before then"
            if ticket.renew_till > ticket.end
            else "; not renewable: kinit again, or submit with --principal/--keytab"
        )
        out.append(
            f"the Kerberos ticket of {ticket.client} in {ccname or 'the default cache'} {_ends(ticket.end, now)}{renew}"
        )
    path = env.get("HADOOP_TOKEN_FILE_LOCATION")
    try:
        tokens = read_token_file(path) if path else []
    except (OSError, ValueError):
        tokens = []  # load_tokens reports an unreadable file on the first store call
    for token in tokens:
        end = token.max_date
        if token.kind == HDFS_TOKEN_KIND and end is not None and end - now <= within:
            out.append(
                f"the HDFS delegation token for {token.service} in {path} {_ends(end, now)} (its maxDate: no renewal extends it)"
            )
    return out


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _ends(end: float, now: float) -> str:
    left = end - now
    if left <= 0:
        return f"expired at {_when(end)}"
    return f"expires at {_when(end)} (in {int(left // 3600)} h {int(left % 3600 // 60)} min)"
