"""Plumbing behind :mod:`mailwarden.testing.localupstream`: certificates, processes, ports,
files, IMAP answer parsing, and the errors it raises."""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class UpstreamError(RuntimeError):
    """The local upstream could not do what was asked."""


class UpstreamUnavailable(UpstreamError):
    """Dovecot or Postfix is not installed (or we are not root), so no upstream can run here."""


class UpstreamStartError(UpstreamError):
    """A server did not start; the message ends with the tail of the relevant log."""

    def __init__(self, message: str, log_tail: str = "", *, port_in_use: bool = False) -> None:
        super().__init__(f"{message}\n--- log tail ---\n{log_tail}" if log_tail else message)
        self.log_tail = log_tail
        self.port_in_use = port_in_use


def is_ip(host: str) -> bool:
    """Whether *host* is a literal IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def tls_material(host: str) -> tuple[bytes, bytes, bytes]:
    """A throwaway CA and a server certificate for ``localhost``, 127.0.0.1 and *host*.

    Returns ``(ca_pem, chain_pem, key_pem)``: the CA certificate clients trust, the server
    certificate followed by the CA, and the server's private key.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _dt.datetime.now(_dt.UTC)

    def usage(**allowed: bool) -> x509.KeyUsage:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{name: allowed.get(name, False) for name in names})

    def build(subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=825))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailwarden local upstream CA")])
    ca_cert = (
        build("mailwarden local upstream CA", ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if host not in ("localhost", "127.0.0.1"):
        names.append(x509.IPAddress(ipaddress.ip_address(host)) if is_ip(host) else x509.DNSName(host))
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    cert = (
        build("localhost", ca_name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(digital_signature=True, key_agreement=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca_pem, cert.public_bytes(pem) + ca_pem, key_pem


# --------------------------------------------------------------------- operating system
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_binary(name: str) -> str | None:
    """Path of a server binary, also looking in the sbin directories a non-root PATH lacks."""
    return shutil.which(name) or shutil.which(name, path=SBIN_PATH)


def run_detached(argv: list[str], log: Path) -> int:
    """Run a server's start command with stdio on *log*: daemons must not inherit our pipes."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAIL_CONFIG", "MAIL_DEBUG")}
    env["PATH"] = SBIN_PATH
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=60
        ).returncode


def free_ports(host: str, count: int) -> list[int]:
    """*count* distinct ports that are free on *host* right now (another process may race us)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = [socket.socket(family, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Replace *path* atomically with *data*, with permissions *mode*."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int, since: int = 0) -> str:
    """The last *lines* lines of a log, ignoring what was there before byte offset *since*."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(max(since if since <= end else 0, end - 300 * lines))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return f"({path} does not exist)\n"
    return "".join(line + "\n" for line in text.splitlines()[-lines:]) or "(empty)\n"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll *predicate* every 50 ms; TimeoutError naming *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_running(pid: int, program: str) -> bool:
    """Whether *pid* is a live process of *program*. Zombies and reused PIDs count as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
        return False
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name == program
    except OSError:
        return True


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this machine, from /proc/net/tcp and tcp6."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rpartition(":")[2], 16))
    return ports


def reachable_by_others(path: Path) -> bool:
    """Whether other users may search every existing directory on the way to *path*."""
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.exists())


def shared_tmp() -> str:
    """A temporary directory that the dovecot, mail and postfix users can reach."""
    for candidate in (tempfile.gettempdir(), "/tmp"):
        if reachable_by_others(Path(candidate)):
            return candidate
    raise OSError("no temporary directory that Dovecot and Postfix can reach")


# ------------------------------------------------------------------------------- IMAP
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_UID = re.compile(rb"UID (\d+)")


def quote_mailbox(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_fetch(data: Sequence[object]) -> list[tuple[bytes, list[str]]]:
    """imaplib's answer to ``UID FETCH 1:* (FLAGS BODY.PEEK[])`` as (raw, flags), by UID."""
    return [(raw, names) for _, raw, names in parse_fetch_uids(data)]


def parse_fetch_uids(data: Sequence[object]) -> list[tuple[int, bytes, list[str]]]:
    """Like :func:`parse_fetch`, each with its UID: (uid, raw, flags), by UID."""
    found: list[tuple[int, bytes, list[str]]] = []
    for i, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        head = item[0] if isinstance(item[0], bytes) else b""
        raw = item[1] if isinstance(item[1], bytes) else b""
        nxt = data[i + 1] if i + 1 < len(data) else b""
        after = nxt if isinstance(nxt, bytes) else b""
        flags = _FLAGS.search(head) or _FLAGS.search(after)
        uid = _UID.search(head) or _UID.search(after)
        names = flags.group(1).decode().split() if flags else []
        found.append((int(uid.group(1)) if uid else i, raw, names))
    return sorted(found, key=lambda entry: entry[0])
