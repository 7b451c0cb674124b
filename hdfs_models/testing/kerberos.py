"""The Kerberos side of :class:`~hdfs_models.testing.MiniDFS` (``kerberos=True``).

The launcher JVM runs a KDC (Hadoop's MiniKdc) beside a secure MiniDFSCluster:
service principals ``hdfs/localhost`` and ``HTTP/localhost``, one principal
and keytab per user (``alice`` and ``bob`` by default) with a home directory
``/user/<name>`` owned by that user, and a ``krb5.conf`` for the system's MIT
Kerberos client. This module gives a test the environment of a process that
acts as one of those users:

- :meth:`KerberosMixin.kerberos_env`: a fresh ticket cache filled by ``kinit``
  from the user's keytab (``KRB5CCNAME``), as after an interactive login;
- :meth:`KerberosMixin.token_env`: only a delegation token file
  (``HADOOP_TOKEN_FILE_LOCATION``, written by the JVM in Hadoop's own format,
  as YARN gives one to every container) and an empty ticket cache.

Both include ``KRB5_CONFIG`` and ``HADOOP_CONF_DIR``. ``kinit`` comes from the
system (Debian: ``apt-get install krb5-user``); :func:`missing_kerberos_tools`
says when it is absent.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hdfs_models.testing.launcher import MiniDFSError

__all__ = ["DEFAULT_USERS", "KerberosMixin", "become", "missing_kerberos_tools"]

DEFAULT_USERS = ("alice", "bob")
PROTECTIONS = ("authentication", "integrity", "privacy")
_INSTALL_HINT = "install MIT Kerberos client tools (Debian: apt-get install -y krb5-user)"
_counter = itertools.count()


def missing_kerberos_tools(env: Mapping[str, str] | None = None) -> str:
    """Return why a Kerberized MiniDFS cannot be used here, or ``""`` if it can."""
    env = os.environ if env is None else env
    if shutil.which("kinit", path=env.get("PATH", os.defpath)) is None:
        return f"a Kerberized MiniDFS needs kinit on PATH: {_INSTALL_HINT}"
    return ""


def kerberos_launcher_args(enabled: bool, base_dir: Path, protection: str, users: tuple[str, ...]) -> list[str]:
    """The launcher's command-line options for Kerberos (none when disabled)."""
    if not enabled:
        return []
    if protection not in PROTECTIONS:
        raise ValueError(f"protection must be one of {PROTECTIONS}, not {protection!r}")
    args = ["--kerberos", str(base_dir / "kerberos"), "--protection", protection]
    for user in users:
        if not user.isidentifier() or user == "hdfs":
            raise ValueError(f"user names must be plain identifiers other than 'hdfs', not {user!r}")
        args += ["--user", user]
    return args


class KerberosMixin:
    """Kerberos accessors of a started MiniDFS (``kerberos=True``)."""

    info: dict[str, Any]
    base_dir: Path | None

    @property
    def conf_dir(self) -> str:  # provided by MiniDFS
        raise NotImplementedError

    def command(self, *words: str) -> Any:  # provided by MiniDFS
        raise NotImplementedError

    @property
    def kerberos(self) -> dict[str, Any]:
        """The KDC's description: ``realm``, ``krb5_conf``, ``principals``, ``keytabs``, ``protection``."""
        info = self.info.get("kerberos")
        if not info:
            raise MiniDFSError("this MiniDFS was started without kerberos=True", reason="not kerberized")
        return dict(info)

    @property
    def krb5_conf(self) -> str:
        """Path of the ``krb5.conf`` that points at the KDC (the value for ``KRB5_CONFIG``)."""
        return str(self.kerberos["krb5_conf"])

    @property
    def realm(self) -> str:
        """The KDC's realm (``EXAMPLE.COM``)."""
        return str(self.kerberos["realm"])

    def principal(self, user: str) -> str:
        """``user@REALM``; ``hdfs`` is the superuser's service principal ``hdfs/localhost@REALM``."""
        return str(self._per_user("principals", user))

    def keytab(self, user: str) -> str:
        """Path of ``user``'s keytab (``hdfs``: the service keytab)."""
        return str(self._per_user("keytabs", user))

    def _per_user(self, field: str, user: str) -> Any:
        table = self.kerberos[field]
        if user not in table:
            raise MiniDFSError(
                f"no principal for {user!r} on this MiniDFS; users: {sorted(table)} "
                "(name more with MiniDFS(users=...))",
                reason="unknown user",
            )
        return table[user]

    def _private_dir(self, name: str) -> Path:
        assert self.base_dir is not None
        path = self.base_dir / name
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def kinit(self, user: str, ccache: str | os.PathLike[str], *, lifetime: str | None = None) -> None:
        """Fill ``ccache`` with ``user``'s ticket from the keytab (``lifetime`` as kinit's ``-l``)."""
        cmd = ["kinit", "-c", f"FILE:{ccache}", "-kt", self.keytab(user)]
        if lifetime:
            cmd += ["-l", lifetime]
        cmd.append(self.principal(user))
        env = {**os.environ, "KRB5_CONFIG": self.krb5_conf}
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        except FileNotFoundError as exc:
            raise MiniDFSError(missing_kerberos_tools() or str(exc), reason="missing tools") from exc
        if proc.returncode != 0:
            raise MiniDFSError(
                f"kinit for {self.principal(user)} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()}",
                reason="kinit failed",
            )

    def client_env(self) -> dict[str, str]:
        """What every client process on this cluster needs: ``HADOOP_CONF_DIR`` and ``KRB5_CONFIG``."""
        return {"HADOOP_CONF_DIR": self.conf_dir, "KRB5_CONFIG": self.krb5_conf}

    def kerberos_env(self, user: str, *, lifetime: str | None = None) -> dict[str, str]:
        """Environment of a process logged in as ``user``: a fresh ticket cache, no token file.

        ``HADOOP_TOKEN_FILE_LOCATION`` is set to ``""`` so that an inherited
        token file cannot stand in for the ticket (merge into ``os.environ``
        and drop empty values, or pass as a subprocess's whole environment).
        """
        ccache = self._private_dir("ccache") / f"{user}-{os.getpid()}-{next(_counter)}"
        self.kinit(user, ccache, lifetime=lifetime)
        return {**self.client_env(), "KRB5CCNAME": f"FILE:{ccache}", "HADOOP_TOKEN_FILE_LOCATION": ""}

    def no_ticket_env(self) -> dict[str, str]:
        """Environment of a process with neither a ticket nor a token (an empty ticket cache)."""
        ccache = self._private_dir("ccache") / f"empty-{os.getpid()}-{next(_counter)}"
        return {**self.client_env(), "KRB5CCNAME": f"FILE:{ccache}", "HADOOP_TOKEN_FILE_LOCATION": ""}

    def write_token(self, user: str, path: str | os.PathLike[str], *, service: str | None = None) -> dict[str, Any]:
        """Have the JVM write ``user``'s delegation token file to ``path`` (Hadoop's format).

        The token's service is what Hadoop names it (``127.0.0.1:PORT``, or
        ``ha-hdfs:NAMESERVICE``) unless ``service`` overrides it. Returns
        ``{"path", "user", "tokens": [{"kind", "service"}]}``.
        """
        words = ["token", user, str(Path(path).absolute())]
        if service:
            words.append(service)
        return dict(self.command(*words))

    def token_env(self, user: str, *, service: str | None = None) -> dict[str, str]:
        """Environment of a process that holds only ``user``'s delegation token file, no ticket."""
        path = self._private_dir("tokens") / f"{user}-{os.getpid()}-{next(_counter)}.token"
        self.write_token(user, path, service=service)
        return {**self.no_ticket_env(), "HADOOP_TOKEN_FILE_LOCATION": str(path)}


def become(monkeypatch: Any, env: Mapping[str, str]) -> None:
    """Take the identity ``env`` describes (from :meth:`KerberosMixin.kerberos_env`, ``token_env`` …).

    Sets each variable through ``monkeypatch`` (pytest's ``MonkeyPatch``, so the
    test gets its environment back); an empty value unsets the variable, so an
    inherited ticket cache or token file cannot stand in for the one asked for.
    """
    for key, value in env.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
