"""Two company mailboxes of their own for the sync's upstream tests (the shared ``upstream``
is left alone: these tests count messages and recreate folders):

- ``lab``: Dovecot as the local upstream serves it (IDLE, CONDSTORE, QRESYNC, ESEARCH,
  SPECIAL-USE, ID), logging every ID it is sent;
- ``provider``: a Dovecot that advertises what Exchange or 163 do without ID (no IDLE, no
  CONDSTORE/QRESYNC, no ESEARCH, no SPECIAL-USE), with folders named in Chinese only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mailwarden.gateway.config import HostPort, Secret, Upstream
from mailwarden.gateway.sync.upstream import MailboxConnection
from mailwarden.gateway.tls import client_context
from mailwarden.gateway.upstream.budget import ConnectionBudget
from mailwarden.testing.localupstream import LocalUpstream, MailAccount

from tests.conftest import running

ACCOUNT = MailAccount("sync@company.test", "sync-secret")
ID_LOG = "imap_id_log = *\n"
PROVIDER_CAPABILITIES = "IMAP4rev1 LITERAL+ SASL-IR UIDPLUS MOVE NAMESPACE CHILDREN UNSELECT"
PROVIDER_FOLDERS = (("已发送", None), ("草稿箱", None), ("已删除", None), ("垃圾邮件", None),
                    ("其他文件夹/订阅邮件", None))


def _started(workdir: Path, **options: object) -> Iterator[LocalUpstream]:
    yield from running(LocalUpstream(workdir, [ACCOUNT], domains=["company.test", "buyer.test"], **options))  # type: ignore[arg-type]


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUpstream]:
    yield from _started(tmp_path_factory.mktemp("sync-lab"), dovecot_extra=ID_LOG)


@pytest.fixture(scope="package")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUpstream]:
    yield from _started(tmp_path_factory.mktemp("sync-provider"), mailboxes=PROVIDER_FOLDERS,
                        dovecot_extra=ID_LOG + f"imap_capability = {PROVIDER_CAPABILITIES}\n")


def upstream_of(server: LocalUpstream, *, imap_tls: str = "implicit") -> Upstream:
    """The ``[upstream]`` section that points at ``server`` as the shared account."""
    port = server.imaps_port if imap_tls == "implicit" else server.imap_port
    return Upstream(imap=HostPort("localhost", port), imap_tls=imap_tls, smtp=HostPort("localhost", server.smtp_port),
                    smtp_tls="none", username=ACCOUNT.address, password=Secret(ACCOUNT.password),
                    ca_file=server.ca_file, tls_verify=True, sent_folder="Sent", inbox_folder="INBOX")


Connect = Callable[..., MailboxConnection]


@pytest.fixture
def connection() -> Connect:
    """``connection(server, budget=None, holder="test", **options)``: a MailboxConnection to ``server``."""
    def make(server: LocalUpstream, budget: ConnectionBudget | None = None, holder: str = "test",
             imap_tls: str = "implicit", **options: object) -> MailboxConnection:
        u = upstream_of(server, imap_tls=imap_tls)
        return MailboxConnection(u, client_context(u.ca_file, True), budget=budget or ConnectionBudget({"imap": 4}),
                                 holder=holder, **options)  # type: ignore[arg-type]
    return make
