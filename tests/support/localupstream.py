"""A throwaway, real company mailbox: a private Dovecot and a private Postfix on loopback.

:class:`LocalUpstream` stands in for a hosted mailbox (Tencent Exmail, Gmail, ...) in the test
suite and in ``mailwarden demo``. It needs the distribution's ``dovecot-imapd``,
``dovecot-lmtpd`` and ``postfix`` packages and root (both servers drop privileges themselves).

What it serves, on free ports of ``host``:

- ``imap_port``: IMAP with STARTTLS (plaintext login allowed too: loopback only);
- ``imaps_port``: IMAP over implicit TLS;
- ``smtp_port``: inbound SMTP, port-25 style: anyone, no AUTH, only for the listed domains;
- ``submission_port``: STARTTLS required, AUTH PLAIN/LOGIN, MAIL FROM must be the logged-in
  account. Nothing ever leaves the machine: a recipient outside ``domains`` is refused at
  RCPT time (550 5.7.1) on both SMTP ports.

Every listed domain has a catch-all mailbox ``catchall@<domain>`` (password ``catchall``) that
receives mail for every address of the domain that is not an account, so a test reads what a
customer received by logging in as ``catchall@buyer.test``. Both servers use one certificate,
signed by a throwaway CA written to ``ca_file``; clients verify against it.

Every mailbox has the folders ``mailboxes`` names (Sent, Drafts, Trash and Junk with their
special-use attributes by default); ``dovecot_extra`` adds configuration lines, e.g.
``imap_capability = IMAP4rev1 IDLE`` for a server that advertises less, like a provider.

Configuration, certificates and logs live in ``workdir``; the mail, the queue and the sockets
live in ``workdir/run``. When other users cannot reach ``workdir`` (pytest's 0700 temporary
directories) ``run`` is a symlink to a private directory under ``/tmp`` that ``stop()`` deletes.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from mailwarden.testing import servconf as conf
from mailwarden.testing import processes as osx
from mailwarden.testing.clients import FetchedMessage, UpstreamClients
from mailwarden.testing.processes import UpstreamError, UpstreamStartError, UpstreamUnavailable

__all__ = [
    "DEFAULT_DOMAINS",
    "FetchedMessage",
    "LocalUpstream",
    "MailAccount",
    "UpstreamError",
    "UpstreamStartError",
    "UpstreamUnavailable",
]

DEFAULT_DOMAINS = ("company.test", "buyer.test", "customer.test", "example.com")
CATCHALL_PASSWORD = "catchall"
DEBIAN_PACKAGES = "dovecot-imapd dovecot-lmtpd postfix"
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 15.0


@dataclass
class MailAccount:
    """A mailbox on the upstream: login name (the address) and password."""

    address: str
    password: str


class LocalUpstream(UpstreamClients):
    """A private Dovecot + Postfix pair in ``workdir``; see the module documentation."""

    def __init__(
        self,
        workdir: Path,
        accounts: list[MailAccount],
        *,
        domains: list[str] | None = None,
        host: str = "127.0.0.1",
        mailboxes: Iterable[tuple[str, str | None]] = conf.DEFAULT_MAILBOXES,
        dovecot_extra: str = "",
    ) -> None:
        if not osx.is_ip(host):
            raise ValueError(f"host must be an IP address, not {host!r}")
        self.workdir = Path(workdir).absolute()
        self.host = host
        self._mailboxes = tuple(mailboxes)
        self._dovecot_extra = dovecot_extra
        self.ca_file: Path = self.workdir / "tls" / "ca.pem"
        self._log_dir = self.workdir / "logs"
        self._run_dir = self.workdir / "run"
        self._postfix_etc = self.workdir / "postfix"
        self._postfix_pidfile = self._run_dir / "postfix-queue" / "pid" / "master.pid"
        self._dovecot_pidfile = self._run_dir / "dovecot" / "master.pid"
        self.imap_port = self.imaps_port = self.smtp_port = self.submission_port = 0
        self._started = False
        self._log_marks: dict[str, int] = {}
        self._domains: list[str] = []
        self._accounts: dict[str, str] = {}
        for domain in DEFAULT_DOMAINS if domains is None else domains:
            self.add_domain(domain)
        for account in accounts:
            self.add_account(account.address, account.password)
        self._instance = "mw-upstream-" + hashlib.sha256(str(self.workdir).encode()).hexdigest()[:8]

    # ----------------------------------------------------------------- accounts and domains
    @property
    def domains(self) -> list[str]:
        """The domains delivered locally (each with its catch-all)."""
        return list(self._domains)

    @property
    def accounts(self) -> list[MailAccount]:
        """Every mailbox, catch-alls included."""
        return [MailAccount(address, password) for address, password in self._all_accounts().items()]

    def add_domain(self, domain: str) -> None:
        """Deliver *domain* locally too (before :meth:`start`)."""
        domain = domain.strip().lower()
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", domain):
            raise ValueError(f"invalid domain {domain!r}")
        self._require_stopped("add a domain")
        if domain not in self._domains:
            self._domains.append(domain)

    def add_account(self, address: str, password: str) -> MailAccount:
        """Create a mailbox (before :meth:`start`); its domain is added to :attr:`domains`."""
        self._require_stopped("add an account")
        address = address.strip().lower()
        local, _, domain = address.partition("@")
        if not local or not re.fullmatch(r"[a-z0-9._%+-]+", local) or not domain:
            raise ValueError(f"invalid address {address!r}")
        if not password or re.search(r"[:\s]", password):
            raise ValueError("passwords must be non-empty, without ':' or whitespace")
        self.add_domain(domain)
        self._accounts[address] = password
        return MailAccount(address, password)

    def password_for(self, address: str) -> str:
        """The password of an account or catch-all; KeyError if there is no such mailbox."""
        return self._all_accounts()[address.strip().lower()]

    def _all_accounts(self) -> dict[str, str]:
        catchalls = {f"catchall@{d}": CATCHALL_PASSWORD for d in self._domains}
        return catchalls | self._accounts

    def _require_stopped(self, what: str) -> None:
        if self._started:
            raise UpstreamError(f"cannot {what} while the upstream is running")

    # ----------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Write the configuration and start Dovecot then Postfix; returns when both listen."""
        if self._started:
            return
        dovecot, postfix = _binary("dovecot"), _binary("postfix")
        if os.geteuid() != 0:
            raise UpstreamUnavailable("the local upstream must run as root (Dovecot and Postfix drop privileges)")
        self.stop()  # leftovers of an earlier run in this workdir
        self._prepare_dirs()
        logs = ("dovecot", "postfix", "commands")
        self._log_marks = {name: osx.file_size(self._log_dir / f"{name}.log") for name in logs}
        for attempt in (1, 2):
            self._pick_ports()
            self._write_config()
            try:
                self._start_dovecot(dovecot)
                self._start_postfix(postfix)
            except BaseException as exc:
                self._stop_processes()
                if isinstance(exc, UpstreamStartError) and exc.port_in_use and attempt == 1:
                    continue  # lost the race for a free port: pick new ones once
                self._remove_private_runtime()
                raise
            break
        self._started = True

    def stop(self) -> None:
        """Stop both servers by their PID files and wait until their ports close. Idempotent."""
        self._stop_processes()
        self._remove_private_runtime()
        self._started = False

    def stop_smtp(self) -> None:
        """Stop Postfix only: both SMTP ports refuse connections until :meth:`start_smtp`."""
        self._stop_postfix()

    def start_smtp(self) -> None:
        """Start Postfix again on the same ports; queued mail is delivered."""
        if not self._started:
            raise UpstreamError("start() the upstream first")
        self._start_postfix(_binary("postfix"))

    def __enter__(self) -> LocalUpstream:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        return (
            f"<LocalUpstream {state} {self.workdir} imap={self.host}:{self.imap_port} "
            f"imaps={self.imaps_port} smtp={self.smtp_port} submission={self.submission_port}>"
        )

    def server_pids(self) -> dict[str, int | None]:
        """The master process of each server (``postfix``, ``dovecot``), None where none runs."""
        return {"postfix": osx.read_pidfile(self._postfix_pidfile), "dovecot": osx.read_pidfile(self._dovecot_pidfile)}

    def kick(self, address: str) -> None:
        """Cut every IMAP connection of *address* at the server (``doveadm kick``), as a
        provider's restart or a network failure would."""
        doveadm = osx.find_binary("doveadm")
        if doveadm is None:
            raise UpstreamUnavailable("doveadm is not installed (it comes with dovecot-core)")
        rc = self._command([doveadm, "-c", str(self.workdir / "dovecot.conf"), "kick", address])
        if rc != 0:
            raise UpstreamError(f"doveadm kick {address} exited with status {rc}:\n{self.log_tail('commands')}")

    def log_tail(self, component: Literal["dovecot", "postfix", "commands"], lines: int = 40) -> str:
        """The last *lines* lines that *component* logged since the last :meth:`start`."""
        return osx.tail(self._log_dir / f"{component}.log", lines, since=self._log_marks.get(component, 0))

    # ------------------------------------------------------------------------- internals
    def _prepare_dirs(self) -> None:
        for path in (self.workdir, self.ca_file.parent, self._log_dir, self._postfix_etc):
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        if osx.reachable_by_others(self.workdir) and len(str(self._run_dir)) <= 64:
            run = self._run_dir
            run.mkdir(mode=0o755, exist_ok=True)
        else:  # unprivileged users cannot reach workdir, or socket paths would be too long
            run = Path(tempfile.mkdtemp(prefix="mw-upstream-", dir=osx.shared_tmp()))
            self._run_dir.symlink_to(run, target_is_directory=True)
        run.chmod(0o755)
        mail = pwd.getpwnam("mail")
        for name in ("mail", "dovecot-state", "postfix-queue"):
            (run / name).mkdir(mode=0o755, exist_ok=True)
        os.chown(run / "mail", mail.pw_uid, mail.pw_gid)
        (run / "mail").chmod(0o750)
        chain, key = self.ca_file.with_name("server.pem"), self.ca_file.with_name("server.key")
        if not (self.ca_file.exists() and chain.exists() and key.exists()):  # kept across restarts
            ca_pem, chain_pem, key_pem = osx.tls_material(self.host)
            osx.write_file(key, key_pem, 0o600)
            osx.write_file(chain, chain_pem, 0o644)
            osx.write_file(self.ca_file, ca_pem, 0o644)

    def _pick_ports(self) -> None:
        ports = osx.free_ports(self.host, 4)
        self.imap_port, self.imaps_port, self.smtp_port, self.submission_port = ports

    def _settings(self) -> conf.UpstreamSettings:
        mail, run = pwd.getpwnam("mail"), self._run_dir.resolve()
        return conf.UpstreamSettings(
            instance=self._instance, host=self.host, domains=tuple(self._domains),
            imap_port=self.imap_port, imaps_port=self.imaps_port,
            smtp_port=self.smtp_port, submission_port=self.submission_port,
            mail_uid=mail.pw_uid, mail_gid=mail.pw_gid,
            postfix_config_dir=self._postfix_etc, log_dir=self._log_dir,
            tls_chain=self.ca_file.with_name("server.pem"), tls_key=self.ca_file.with_name("server.key"),
            dovecot_base_dir=run / "dovecot", dovecot_state_dir=run / "dovecot-state",
            dovecot_users=run / "users", mail_root=run / "mail",
            postfix_queue_dir=run / "postfix-queue", postfix_data_dir=run / "postfix-data",
            mailboxes=self._mailboxes, dovecot_extra=self._dovecot_extra,
        )

    def _write_config(self) -> None:
        s = self._settings()
        accounts = self._all_accounts()
        osx.write_file(self.workdir / "dovecot.conf", conf.dovecot_conf(s).encode(), 0o644)
        osx.write_file(s.dovecot_users, conf.dovecot_passwd(accounts).encode(), 0o640)
        os.chown(s.dovecot_users, 0, grp.getgrnam("dovecot").gr_gid)
        etc = self._postfix_etc
        files = {
            "main.cf": conf.postfix_main_cf(s),
            "master.cf": conf.postfix_master_cf(s),
            "virtual_mailbox": conf.virtual_mailbox_map(accounts),
            "virtual_alias": conf.virtual_alias_map(accounts, self._domains),
            "sender_logins": conf.sender_login_map(accounts),
        }
        old = time.time() - 10  # Postfix waits until main.cf and tables are over a second old
        for name, text in files.items():
            osx.write_file(etc / name, text.encode(), 0o644)
            os.utime(etc / name, (old, old))

    def _start_dovecot(self, binary: str) -> None:
        rc = self._command([binary, "-c", str(self.workdir / "dovecot.conf")])
        sockets = [self._run_dir / "dovecot" / name for name in ("lmtp", "auth-postfix")]
        if rc != 0:
            self._raise_start_error(f"dovecot exited with status {rc}", "dovecot")
        try:
            self._wait_ports((self.imap_port, self.imaps_port), listening=True, what="Dovecot")
            osx.wait_until(lambda: all(p.exists() for p in sockets), _START_TIMEOUT, "Dovecot's LMTP/auth sockets")
        except TimeoutError as exc:
            self._raise_start_error(str(exc), "dovecot")

    def _start_postfix(self, binary: str) -> None:
        rc = self._command([binary, "-c", str(self._postfix_etc), "start"])
        if rc != 0:
            self._raise_start_error(f"postfix start exited with status {rc}", "postfix")
        try:
            self._wait_ports((self.smtp_port, self.submission_port), listening=True, what="Postfix")
        except TimeoutError as exc:
            self._raise_start_error(str(exc), "postfix")

    def _raise_start_error(self, message: str, component: Literal["dovecot", "postfix"]) -> None:
        tail = f"[{component}.log]\n{self.log_tail(component)}[commands.log]\n{self.log_tail('commands', 10)}"
        raise UpstreamStartError(message, tail, port_in_use="Address already in use" in tail)

    def _command(self, argv: list[str]) -> int:
        return osx.run_detached(argv, self._log_dir / "commands.log")

    def _stop_processes(self) -> None:
        self._stop_postfix()  # first, so that no delivery into Dovecot is cut half-way
        if self._stop_pidfile(self._dovecot_pidfile, "dovecot"):
            self._wait_ports((self.imap_port, self.imaps_port), listening=False, what="Dovecot")

    def _stop_postfix(self) -> None:
        if self._stop_pidfile(self._postfix_pidfile, "master"):
            self._wait_ports((self.smtp_port, self.submission_port), listening=False, what="Postfix")

    def _stop_pidfile(self, pidfile: Path, program: str) -> bool:
        """SIGTERM (then SIGKILL) the server whose master wrote *pidfile*; False if none ran."""
        pid = osx.read_pidfile(pidfile)
        if pid is None or not osx.is_running(pid, program):
            return False
        for sig, timeout in ((signal.SIGTERM, _STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return True
            try:
                osx.wait_until(lambda: not osx.is_running(pid, program), timeout, f"{program} ({pid}) to exit")
                return True
            except TimeoutError:
                continue
        raise UpstreamError(f"{program} (pid {pid}) survived SIGKILL")

    def _wait_ports(self, ports: Iterable[int], *, listening: bool, what: str) -> None:
        wanted = {port for port in ports if port}
        state = "listen" if listening else "close"
        osx.wait_until(
            lambda: (wanted <= osx.listening_ports()) if listening else not (wanted & osx.listening_ports()),
            _START_TIMEOUT if listening else _STOP_TIMEOUT,
            f"{what} ports {sorted(wanted)} to {state}",
        )

    def _remove_private_runtime(self) -> None:
        if self._run_dir.is_symlink():
            target = self._run_dir.resolve()
            self._run_dir.unlink()
            if target.name.startswith("mw-upstream-"):
                shutil.rmtree(target, ignore_errors=True)


def _binary(name: str) -> str:
    path = osx.find_binary(name)
    if path is None:
        raise UpstreamUnavailable(
            f"{name} is not installed: the local upstream needs the Debian packages {DEBIAN_PACKAGES} "
            f"(apt-get install -y {DEBIAN_PACKAGES})"
        )
    return path
