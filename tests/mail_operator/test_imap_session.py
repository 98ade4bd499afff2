"""The IMAP helpers the mail API builds on, against a real Dovecot (QRESYNC/CONDSTORE enabled)."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from backend.mail.operator import (
    ActingIdentity,
    FolderNotFoundError,
    ImapSession,
    MasterUserAuth,
    MessageNotFoundError,
    OperatorUnavailableError,
    client_ssl_context,
    quote,
)
from contracts.errors import ErrorCode
from core.settings import OperatorSettings
from tests.mail_operator.conftest import DEVICE, IDNAT, make_message
from tests.peers.dovecot import DovecotInstance, MailUser
from tests.peers.fixtures import MailboxFactory


@pytest.fixture
def user(mailbox_factory: MailboxFactory) -> MailUser:
    return mailbox_factory()


@pytest.fixture
async def imap(
    operator_settings: OperatorSettings, master_auth: MasterUserAuth, user: MailUser
) -> AsyncIterator[ImapSession]:
    session = await ImapSession.open(
        settings=operator_settings,
        auth=master_auth,
        identity=ActingIdentity(mailbox=user.address, idnat=IDNAT, device_id=DEVICE),
    )
    yield session
    await session.logout()


async def test_folders_with_special_use_and_counts(imap: ImapSession, dovecot: DovecotInstance, user: MailUser) -> None:
    dovecot.deliver(user.address, make_message(subject="un"))
    dovecot.deliver(user.address, make_message(subject="deux"))
    folders = {f.name: f for f in await imap.list_folders()}
    assert set(folders) == {"INBOX", "Sent", "Drafts", "Trash", "Junk"}
    assert folders["Sent"].special_use == "\\Sent"
    assert folders["Trash"].special_use == "\\Trash"
    assert folders["Drafts"].special_use == "\\Drafts"
    assert folders["INBOX"].special_use is None
    assert (folders["INBOX"].messages, folders["INBOX"].unseen) == (2, 2)
    assert (folders["Sent"].messages, folders["Sent"].unseen) == (0, 0)
    assert await imap.status("INBOX") == (2, 2)


async def test_select_search_and_summaries(imap: ImapSession, dovecot: DovecotInstance, user: MailUser) -> None:
    dovecot.deliver(user.address, make_message(subject="Résultats d'analyse", attachment=b"%PDF-1.4 fake"))
    dovecot.deliver(user.address, make_message(subject="Sans pièce jointe"))
    selected = await imap.select("INBOX")
    assert (selected.exists, selected.uidnext, selected.readonly) == (2, 3, False)
    assert selected.uidvalidity > 0 and selected.highestmodseq is not None
    uids = await imap.uid_search("ALL")
    assert uids == [1, 2]
    summaries = await imap.uid_fetch_summaries([2, 1, 99])
    assert [s.uid for s in summaries] == [2, 1]
    with_pdf = summaries[1]
    headers = with_pdf.parsed_headers()
    assert headers["Subject"] == "Résultats d'analyse"
    assert headers["X-MSS-NIL"] == "MSS-COMPANION-TEST"
    assert headers["Disposition-Notification-To"] == "dr.antoine.dubois@medecin.mssante.fr"
    assert b"Received:" not in with_pdf.headers  # only the summary headers
    assert with_pdf.has_attachments and not summaries[0].has_attachments
    assert with_pdf.body_structure is not None
    [pdf] = with_pdf.body_structure.attachments
    assert (pdf.part_id, pdf.content_type, pdf.filename, pdf.encoding) == (
        "2",
        "application/pdf",
        "ordonnance.pdf",
        "base64",
    )
    assert with_pdf.size is not None and with_pdf.size > 0
    assert with_pdf.internal_date is not None and with_pdf.internal_date.tzinfo is not None
    assert with_pdf.modseq is not None
    assert "\\Seen" not in with_pdf.flags
    # searching with user text (quoted, UTF-8)
    assert await imap.uid_search("SUBJECT", quote("pièce")) == [2]
    assert await imap.uid_search("UNSEEN") == [1, 2]


async def test_fetch_raw_does_not_mark_seen(imap: ImapSession, dovecot: DovecotInstance, user: MailUser) -> None:
    raw = make_message(subject="Compte rendu")
    dovecot.deliver(user.address, raw)
    await imap.select("INBOX")
    fetched = await imap.uid_fetch_raw(1)
    assert email.message_from_bytes(fetched, policy=email.policy.default)["Subject"] == "Compte rendu"
    assert fetched.endswith(raw.split(b"\r\n\r\n", 1)[1])
    [state] = await imap.uid_fetch_flags([1])
    assert "\\Seen" not in state.flags
    with pytest.raises(MessageNotFoundError):
        await imap.uid_fetch_raw(42)


async def test_flags_move_append_expunge(imap: ImapSession, dovecot: DovecotInstance, user: MailUser) -> None:
    for subject in ("a", "b", "c"):
        dovecot.deliver(user.address, make_message(subject=subject))
    await imap.select("INBOX")
    changed = await imap.uid_store_flags([1, 2], "add", ["\\Seen", "$Forwarded"])
    assert [c.uid for c in changed] == [1, 2]
    assert all({"\\Seen", "$Forwarded"} <= c.flags and c.modseq for c in changed)
    [removed] = await imap.uid_store_flags([2], "remove", ["$Forwarded"])
    assert "$Forwarded" not in removed.flags and "\\Seen" in removed.flags
    assert await imap.uid_search("UNSEEN") == [3]

    moved = await imap.uid_move([1], "Trash")
    assert list(moved.mapping) == [1] and moved.uidvalidity
    assert await imap.uid_search("ALL") == [2, 3]

    appended = await imap.append("Sent", make_message(subject="copie envoyée"), flags=["\\Seen"])
    assert appended.uid == 1 and appended.uidvalidity

    assert await imap.uid_expunge([3]) == [3]
    assert await imap.uid_search("ALL") == [2]

    trash = await imap.select("Trash", readonly=True)
    assert (trash.exists, trash.readonly) == (1, True)
    sent = await imap.select("Sent")
    assert sent.exists == 1
    [copy] = await imap.uid_fetch_summaries([1])
    assert "\\Seen" in copy.flags
    assert copy.parsed_headers()["Subject"] == "copie envoyée"


async def test_move_without_the_move_extension(imap: ImapSession, dovecot: DovecotInstance, user: MailUser) -> None:
    for subject in ("a", "b"):
        dovecot.deliver(user.address, make_message(subject=subject))
    await imap.select("INBOX")
    await imap.uid_store_flags([2], "add", ["\\Deleted"])  # someone else's pending deletion
    caps = imap.capabilities
    imap._capabilities = dataclasses.replace(caps, announced=caps.announced - {"MOVE"})
    moved = await imap.uid_move([1], "Trash")  # COPY, \Deleted, UID EXPUNGE of just that UID
    assert moved.mapping == {1: 1}
    assert await imap.uid_search("ALL") == [2]  # the other \Deleted message is left alone
    assert (await imap.select("Trash")).exists == 1


async def test_missing_folder(imap: ImapSession, dovecot: DovecotInstance, user: MailUser) -> None:
    dovecot.deliver(user.address, make_message())
    with pytest.raises(FolderNotFoundError) as missing:
        await imap.select("N'existe pas")
    assert missing.value.code is ErrorCode.FOLDER_NOT_FOUND
    await imap.select("INBOX")
    with pytest.raises(FolderNotFoundError):
        await imap.append("Archives 2019", make_message())
    with pytest.raises(FolderNotFoundError):
        await imap.uid_move([1], "Archives 2019")


async def test_condstore_and_qresync_changes(
    operator_settings: OperatorSettings,
    imap: ImapSession,
    master_auth: MasterUserAuth,
    dovecot: DovecotInstance,
    user: MailUser,
) -> None:
    for subject in ("a", "b", "c"):
        dovecot.deliver(user.address, make_message(subject=subject))
    first = await imap.select("INBOX")
    full = await imap.uid_fetch_changes(None)
    assert full.full and full.uids == (1, 2, 3) and len(full.changed) == 3
    token = full.highestmodseq
    assert token == first.highestmodseq

    # another device acts on the mailbox meanwhile
    other = await ImapSession.open(
        settings=operator_settings,
        auth=master_auth,
        identity=ActingIdentity(mailbox=user.address, idnat=IDNAT, device_id="dev-other"),
    )
    await other.select("INBOX")
    await other.uid_store_flags([2], "add", ["\\Seen"])
    await other.uid_expunge([3])
    await other.logout()
    dovecot.deliver(user.address, make_message(subject="d"))

    again = await imap.select("INBOX")
    assert again.highestmodseq is not None and token is not None and again.highestmodseq > token
    delta = await imap.uid_fetch_changes(token)
    assert not delta.full
    assert {c.uid for c in delta.changed} == {2, 4}
    assert "\\Seen" in next(c for c in delta.changed if c.uid == 2).flags
    assert delta.vanished == (3,)
    assert delta.uids is None  # QRESYNC said what vanished: no need for the full list
    assert delta.highestmodseq == again.highestmodseq
    # nothing new since: nothing reported
    quiet = await imap.uid_fetch_changes(again.highestmodseq)
    assert quiet.changed == () and quiet.vanished == ()


async def test_condstore_without_qresync_falls_back_to_uid_list(
    imap: ImapSession, dovecot: DovecotInstance, user: MailUser
) -> None:
    dovecot.deliver(user.address, make_message(subject="a"))
    dovecot.deliver(user.address, make_message(subject="b"))
    # pretend the server only had CONDSTORE: the session must then list UIDs for the caller to diff
    imap._capabilities = dataclasses.replace(imap.capabilities, enabled=frozenset({"CONDSTORE"}))
    selected = await imap.select("INBOX")
    await imap.uid_expunge([1])
    delta = await imap.uid_fetch_changes(selected.highestmodseq)
    assert delta.vanished is None
    assert delta.uids == (2,)


async def test_partial_streaming_of_a_big_attachment(
    imap: ImapSession, dovecot: DovecotInstance, user: MailUser
) -> None:
    payload = bytes(range(256)) * (3 * 1024 * 1024 // 256)  # 3 MiB
    dovecot.deliver(user.address, make_message(subject="Imagerie", attachment=payload, filename="scanner.pdf"))
    await imap.select("INBOX")
    [summary] = await imap.uid_fetch_summaries([1])
    assert summary.body_structure is not None
    [part] = summary.body_structure.attachments
    assert part.size is not None and part.size > len(payload)  # base64 on the wire

    chunk = 256 * 1024
    tracemalloc.start()
    try:
        received = 0
        sizes = []
        async for data in imap.uid_fetch_part_stream(1, part.part_id, chunk_size=chunk):
            received += len(data)
            sizes.append(len(data))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == part.size
    assert len(sizes) == -(-part.size // chunk) and max(sizes) == chunk
    assert peak < 6 * chunk, f"streaming held {peak} bytes at once"

    decoded = bytearray()
    async for data in imap.uid_fetch_part_stream(1, part.part_id, chunk_size=chunk, decoded=True):
        decoded += data
    assert bytes(decoded) == payload

    with pytest.raises(MessageNotFoundError):
        async for _ in imap.uid_fetch_part_stream(7, "2"):
            pass
    with pytest.raises(MessageNotFoundError):
        async for _ in imap.uid_fetch_part_stream(1, "2 BODY[]"):
            pass


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_tls_modes(
    operator_settings: OperatorSettings, master_auth: MasterUserAuth, dovecot: DovecotInstance, user: MailUser, tls: str
) -> None:
    settings = dataclasses.replace(
        operator_settings,
        tls=tls,
        imap_port=dovecot.imap_port if tls == "starttls" else dovecot.imaps_port,  # type: ignore[arg-type]
    )
    context = client_ssl_context(ca_file=settings.ca_file)
    identity = ActingIdentity(mailbox=user.address, idnat=IDNAT, device_id=DEVICE)
    session = await ImapSession.open(settings=settings, auth=master_auth, identity=identity, ssl_context=context)
    try:
        await session.select("INBOX")
        transport = session._protocol.transport
        assert transport.get_extra_info("ssl_object").version() in {"TLSv1.2", "TLSv1.3"}
    finally:
        await session.logout()
    assert "STARTTLS" not in session.capabilities  # capabilities re-read after the upgrade


async def test_tls_with_an_untrusted_server_certificate_fails_cleanly(
    operator_settings: OperatorSettings, master_auth: MasterUserAuth, dovecot: DovecotInstance, user: MailUser
) -> None:
    settings = dataclasses.replace(operator_settings, tls="implicit", imap_port=dovecot.imaps_port)
    identity = ActingIdentity(mailbox=user.address, idnat=IDNAT, device_id=DEVICE)
    with pytest.raises(OperatorUnavailableError) as failed:
        await ImapSession.open(settings=settings, auth=master_auth, identity=identity, ssl_context=client_ssl_context())
    assert failed.value.detail is not None and "TLS" in failed.value.detail
