"""Doctor checks of the Hadoop client side: configuration, Kerberos ticket, token file, NameNodes."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from urllib.parse import urlsplit

from hdfs_models._doctor._world import Check, Status, World
from hdfs_models.store._hadoop_conf import SITE_FILES, NameNode, conf_dir, namenodes, site_properties
from hdfs_models.store._tokens import HDFS_TOKEN_KIND, ccache_principal, parse_token_storage

__all__ = ["hadoop_conf", "kerberos", "namenode_checks", "parse_klist", "token_file"]

_SET_CONF = "export HADOOP_CONF_DIR=/etc/hadoop/conf, the directory holding core-site.xml and hdfs-site.xml"
_KINIT = "kinit PRINCIPAL (or kinit -kt KEYTAB PRINCIPAL for a service account)"
_RENEW_BEFORE = 3600.0  # a ticket with less left than this may expire during a job
# klist prints times with strftime in the C locale (we set LC_ALL=C): MIT uses
# one of the first two, Heimdal the third, a few builds ISO 8601.
_KLIST_TIME_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M:%S", "%b %d %H:%M:%S %Y", "%Y-%m-%dT%H:%M:%S")


def hadoop_conf(world: World) -> tuple[Check, dict[str, str]]:
    """``HADOOP_CONF_DIR`` (or ``$HADOOP_HOME/etc/hadoop``), its site files and the default FS they name."""
    directory = conf_dir(world.env)
    if directory is None:
        return Check(
            "hadoop-conf",
            "warn",
            "HADOOP_CONF_DIR is not set (nor HADOOP_HOME): hdfs://host:port URLs work, but HA "
            "nameservices, viewfs mount tables and Kerberos settings are not read",
            _SET_CONF,
        ), {}
    source = "HADOOP_CONF_DIR" if world.env.get("HADOOP_CONF_DIR") else "HADOOP_HOME/etc/hadoop"
    if not os.path.isdir(directory):
        return Check("hadoop-conf", "fail", f"{source}={directory} is not a directory", _SET_CONF), {}
    present = [name for name in SITE_FILES if os.path.isfile(os.path.join(directory, name))]
    if not present:
        return Check(
            "hadoop-conf", "fail", f"{source}={directory} holds neither {' nor '.join(SITE_FILES)}", _SET_CONF
        ), {}
    try:
        props = site_properties(directory)
    except (OSError, ValueError) as exc:
        return Check(
            "hadoop-conf",
            "fail",
            f"{source}={directory}: {exc}",
            "fix the file, or copy the cluster's client configuration again",
        ), {}
    default = props.get("fs.defaultFS") or props.get("fs.default.name")
    detail = f"{source}={directory} ({', '.join(present)}); default FS {default or 'not set (file:///)'}"
    return Check("hadoop-conf", "ok", detail), props


def _target(url: str | None, props: dict[str, str]) -> str | None:
    for candidate in (url, props.get("fs.defaultFS") or props.get("fs.default.name")):
        if candidate and urlsplit(candidate).scheme.lower() in ("hdfs", "viewfs"):
            return candidate
    return None


def namenode_checks(url: str | None, props: dict[str, str], world: World) -> list[Check]:
    """One line per NameNode behind ``url`` (else the default FS): reachable over TCP, and how fast.

    In an HA nameservice with another NameNode reachable, an unreachable one
    is a ``warn`` (jobs fail over); otherwise it is a ``fail``.
    """
    target = _target(url, props)
    if target is None:
        return [Check("namenode", "skip", "no hdfs:// or viewfs:// URL given and none as the default FS")]
    try:
        nodes = namenodes(target, props)
    except ValueError as exc:
        return [Check("namenode", "fail", str(exc), "set it in hdfs-site.xml under HADOOP_CONF_DIR")]
    if not nodes:
        table = urlsplit(target).netloc
        return [
            Check(
                "namenode",
                "fail",
                f"{target}: the mount table has no hdfs:// links",
                f"define fs.viewfs.mounttable.{table}.link./PATH in core-site.xml",
            )
        ]
    probes = [(node, _probe(node, world)) for node in nodes]
    any_up = any(isinstance(result, float) for _, result in probes)
    return [_namenode_line(node, result, any_up) for node, result in probes]


def _probe(node: NameNode, world: World) -> float | OSError:
    """Connect time in milliseconds, or the error."""
    started = world.monotonic()
    try:
        world.connect(node.host, node.port, world.timeout)
    except OSError as exc:
        return exc
    return (world.monotonic() - started) * 1000.0


def _namenode_line(node: NameNode, result: float | OSError, any_up: bool) -> Check:
    label = f"{node.nameservice}.{node.node_id} " if node.nameservice else ""
    where = f"namenode {label}{node.address}"
    if isinstance(result, float):
        return Check("namenode", "ok", f"{where}: reachable in {result:.1f} ms")
    status: Status = "warn" if any_up and node.nameservice else "fail"
    if isinstance(result, socket.gaierror):
        return Check(
            "namenode",
            status,
            f"{where}: unknown host ({result.strerror})",
            f"check the host name in {node.key} (DNS, /etc/hosts)",
        )
    if isinstance(result, ConnectionRefusedError):
        return Check("namenode", status, f"{where}: connection refused", f"start the NameNode, or correct {node.key}")
    if isinstance(result, (TimeoutError, socket.timeout)):
        return Check(
            "namenode",
            status,
            f"{where}: no answer within the timeout",
            f"check that {node.host} is up and that no firewall drops port {node.port}",
        )
    return Check(
        "namenode",
        status,
        f"{where}: {result.strerror or result}",
        f"check the network path to {node.address} ({node.key})",
    )


def token_file(world: World) -> Check:
    """``HADOOP_TOKEN_FILE_LOCATION``, when set, names a readable token file holding an HDFS delegation token."""
    path = world.env.get("HADOOP_TOKEN_FILE_LOCATION")
    if not path:
        return Check("token-file", "skip", "HADOOP_TOKEN_FILE_LOCATION is not set")
    where = f"HADOOP_TOKEN_FILE_LOCATION={path}"
    fix = "point it at the token file YARN or spark-submit wrote, or unset it"
    try:
        tokens = parse_token_storage(world.read_bytes(path))
    except FileNotFoundError:
        return Check("token-file", "fail", f"{where}: no such file", fix)
    except OSError as exc:
        return Check(
            "token-file", "fail", f"{where}: cannot read ({exc.strerror})", "make it readable by this user, or " + fix
        )
    except ValueError as exc:
        return Check("token-file", "fail", f"{where}: {exc}", fix)
    hdfs = [t for t in tokens if t.kind == HDFS_TOKEN_KIND]
    if not hdfs:
        kinds = ", ".join(sorted({t.kind for t in tokens})) or "none"
        return Check("token-file", "fail", f"{where}: no {HDFS_TOKEN_KIND} (tokens: {kinds})", fix)
    services = ", ".join(f"{t.service} (for {t.owner or 'unknown'})" for t in hdfs)
    return Check("token-file", "ok", f"{where}: HDFS delegation token for {services}")


def kerberos(props: dict[str, str], world: World) -> Check:
    """A Kerberos ticket when the cluster asks for one, and how long it has left.

    ``klist`` may be absent on a developer machine: then the line says so
    (a ``fail`` only when Kerberos is required and no token file stands in).
    """
    required = props.get("hadoop.security.authentication", "simple").strip().lower() == "kerberos"
    mode = (
        f"Kerberos {'required' if required else 'not required'} "
        f"(hadoop.security.authentication={'kerberos' if required else 'simple'})"
    )
    token = world.env.get("HADOOP_TOKEN_FILE_LOCATION")
    needed = required and not token
    klist = world.which("klist")
    if klist is None:
        cached = ccache_principal(world.env.get("KRB5CCNAME"), world.uid()) if required else None
        if needed and cached:
            return Check(
                "kerberos",
                "warn",
                f"{mode}; the ticket cache holds {cached}, but klist is not installed so its expiry is unknown",
                "install the MIT Kerberos client (apt-get install krb5-user, dnf install krb5-workstation) to check it",
            )
        if needed:
            return Check(
                "kerberos",
                "fail",
                f"{mode}, but klist is not installed so the ticket cannot be checked",
                "install the MIT Kerberos client (apt-get install krb5-user, dnf install "
                "krb5-workstation), then " + _KINIT,
            )
        return Check(
            "kerberos",
            "ok" if required else "skip",
            f"{mode}; klist is not installed"
            + ("; HADOOP_TOKEN_FILE_LOCATION stands in for a ticket" if token else ""),
        )
    try:
        status, output = world.run([klist], {**world.env, "LC_ALL": "C"}, world.timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check(
            "kerberos",
            "fail" if needed else "warn",
            f"{mode}; {klist} did not run ({exc})",
            "reinstall the Kerberos client",
        )
    if status != 0:
        first = (output.strip().splitlines() or ["no credentials"])[0]
        if needed:
            return Check("kerberos", "fail", f"{mode} and there is no ticket ({first})", _KINIT)
        return Check("kerberos", "ok" if required else "skip", f"{mode}; no ticket ({first})")
    return _ticket_line(mode, parse_klist(output), world.now(), needed)


def _ticket_line(mode: str, ticket: tuple[str | None, float | None], now: float, needed: bool) -> Check:
    principal, expires = ticket
    who = f"ticket for {principal or 'an unknown principal'}"
    if expires is None:
        return Check(
            "kerberos",
            "warn",
            f"{mode}; {who}, but its expiry is not readable in klist's output",
            "check it with klist",
        )
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(expires))
    left = expires - now
    if left <= 0:
        return Check("kerberos", "fail" if needed else "warn", f"{mode}; {who} expired at {when}", _KINIT)
    if left < _RENEW_BEFORE:
        return Check(
            "kerberos",
            "warn",
            f"{mode}; {who} expires in {left / 60:.0f} min (at {when})",
            "kinit -R to renew it, or kinit again before a long job",
        )
    return Check("kerberos", "ok", f"{mode}; {who}, expires in {left / 3600:.1f} h (at {when})")


def _parse_time(text: str) -> float | None:
    for fmt in _KLIST_TIME_FORMATS:
        try:
            return time.mktime(time.strptime(text, fmt))
        except ValueError:
            continue
    return None


def _times(tokens: list[str]) -> list[float]:
    """The timestamps at the start of a ticket line, each spanning 1, 2 or 4 tokens."""
    out: list[float] = []
    i = 0
    while i < len(tokens) and len(out) < 2:
        for width in (4, 2, 1):
            parsed = _parse_time(" ".join(tokens[i : i + width])) if i + width <= len(tokens) else None
            if parsed is not None:
                out.append(parsed)
                i += width
                break
        else:
            break
    return out


def parse_klist(output: str) -> tuple[str | None, float | None]:
    """``(default principal, expiry of its krbtgt ticket as epoch seconds)`` from ``klist``. Pure.

    Falls back to the first ticket's expiry when no ``krbtgt/`` line is found;
    either value is ``None`` when absent.
    """
    principal = None
    expiries: list[tuple[bool, float]] = []
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("Default principal", "Principal"):
            principal = value.strip() or None
            continue
        times = _times(line.split())
        if len(times) == 2:
            expiries.append(("krbtgt/" in line, times[1]))
    expiries.sort(key=lambda item: not item[0])
    return principal, expiries[0][1] if expiries else None
