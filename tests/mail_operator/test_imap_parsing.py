"""Response parsing, BODYSTRUCTURE, mailbox names, the circuit — no server needed.

The byte strings are shaped like Dovecot's answers (captured from the test instance).
"""

from __future__ import annotations

import asyncio

import pytest
from aioimaplib import aioimaplib as aio

from backend.mail.operator import Circuit, OperatorUnavailableError
from backend.mail.operator.bodystructure import parse_body_structure
from backend.mail.operator.imap_parse import (
    ImapParseError,
    format_uid_set,
    group_responses,
    pairs,
    parse_internal_date,
    parse_uid_set,
    parse_values,
    response_code,
)
from backend.mail.operator.imap_protocol import FetchCommand, GatewayImapProtocol
from backend.mail.operator.mutf7 import decode_mailbox, encode_mailbox, quote, quote_mailbox
from core.errors import DomainError


def test_fetch_response_with_literals() -> None:
    lines: list[bytes | bytearray] = [
        b'12 FETCH (UID 5 FLAGS (\\Seen $Forwarded) INTERNALDATE " 7-Jul-2025 10:00:00 +0200" '
        b"BODY[HEADER.FIELDS (FROM SUBJECT)] {26}",
        bytearray(b"Subject: (unbalanced\r\n\r\n\r\n"),
        b" MODSEQ (7))",
        b'LIST () "/" {5}',
        bytearray(b"INBOX"),
        b"",
        b'LIST (\\Sent) "/" "Envoy\\"s"',
    ]
    groups = group_responses(lines)
    assert len(groups) == 3
    fetch = parse_values(groups[0])
    assert fetch[:2] == ["12", "FETCH"]
    items = pairs(fetch[2])  # type: ignore[arg-type]
    assert items["UID"] == "5"
    assert items["FLAGS"] == ["\\Seen", "$Forwarded"]
    assert items["BODY[HEADER.FIELDS (FROM SUBJECT)]"] == b"Subject: (unbalanced\r\n\r\n\r\n"
    assert items["MODSEQ"] == ["7"]
    assert parse_internal_date(items["INTERNALDATE"]).isoformat() == "2025-07-07T10:00:00+02:00"  # type: ignore[union-attr]
    assert parse_values(groups[1]) == ["LIST", [], b"/", b"INBOX"]
    assert parse_values(groups[2]) == ["LIST", ["\\Sent"], b"/", b'Envoy"s']


@pytest.mark.parametrize(
    "bad",
    [[b"1 FETCH (UID 1 BODY[] {10}", bytearray(b"short")], [b'1 FETCH (FLAGS ("open)'], [b"1 FETCH (UID 1 {3}"]],
)
def test_malformed_responses_raise_parse_errors(bad: list[bytes | bytearray]) -> None:
    with pytest.raises(ImapParseError):
        for group in group_responses(bad):
            parse_values(group)


def test_response_codes_and_uid_sets() -> None:
    assert response_code(b"OK [UIDVALIDITY 3857529045] UIDs valid") == ("UIDVALIDITY", "3857529045")
    assert response_code(b"OK [READ-WRITE] Select completed") == ("READ-WRITE", "")
    assert response_code(b"OK [COPYUID 38505 304,319:320 3956:3958] Done") == ("COPYUID", "38505 304,319:320 3956:3958")
    assert response_code(b"NO Mailbox doesn't exist") is None
    assert parse_uid_set("304,319:320,5") == [304, 319, 320, 5]
    assert format_uid_set([7, 1, 2, 3, 9, 10, 3]) == "1:3,7,9:10"
    with pytest.raises(ImapParseError):
        parse_uid_set("1:4294967295")  # a hostile range cannot exhaust memory
    with pytest.raises(ValueError, match="empty"):
        format_uid_set([])


def test_bodystructure_part_numbers_and_attachments() -> None:
    # multipart/mixed: text + (multipart/alternative) + pdf attachment + forwarded message with a zip
    value = parse_values(
        [
            b'BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 120 4 NIL NIL NIL NIL)'
            b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)'
            b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 20 1 NIL NIL NIL NIL) "alternative" '
            b'("boundary" "b2") NIL NIL NIL)'
            b'("application" "pdf" ("name" "=?utf-8?q?r=C3=A9sultat.pdf?=") NIL NIL "base64" 4000 NIL '
            b'("attachment" ("filename*" "utf-8\'\'r%C3%A9sultat.pdf")) NIL NIL)'
            b'("message" "rfc822" NIL NIL NIL "7bit" 900 (NIL "Fwd" NIL NIL NIL NIL NIL NIL NIL NIL) '
            b'(("text" "plain" NIL NIL NIL "7bit" 5 1 NIL NIL NIL NIL)'
            b'("application" "zip" ("name" "IHE_XDM.zip") NIL NIL "base64" 300 NIL NIL NIL NIL) '
            b'"mixed" NIL NIL NIL NIL)'
            b" 30 NIL NIL NIL NIL)"
            b' "mixed" ("boundary" "b1") NIL NIL NIL)'
        ]
    )
    root = parse_body_structure(value[1])
    assert root.part_id == "" and root.content_type == "multipart/mixed" and root.params["boundary"] == "b1"
    ids = {p.part_id: p.content_type for p in root.walk() if not p.is_multipart}
    assert ids == {
        "1": "text/plain",
        "2.1": "text/plain",
        "2.2": "text/html",
        "3": "application/pdf",
        "4": "message/rfc822",
        "4.1": "text/plain",
        "4.2": "application/zip",
    }
    pdf = root.find("3")
    assert pdf is not None and pdf.filename == "résultat.pdf" and pdf.size == 4000 and pdf.encoding == "base64"
    assert [p.part_id for p in root.attachments] == ["3", "4", "4.2"]
    single = parse_body_structure(
        parse_values([b'X ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)'])[1]
    )
    assert single.part_id == "1" and not single.has_attachments


def test_mailbox_names_and_quoting() -> None:
    for name in ("Éléments envoyés", "Dossiers/Patients & Co", "INBOX", "日本"):
        assert decode_mailbox(encode_mailbox(name)) == name
    assert encode_mailbox("Éléments envoyés") == "&AMk-l&AOk-ments envoy&AOk-s"
    assert encode_mailbox("A&B") == "A&-B"
    assert quote('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    with pytest.raises(DomainError):
        quote("two\r\nlines")
    with pytest.raises(DomainError):
        quote_mailbox("")


def test_circuit_backoff_grows_with_jitter_and_closes_on_success() -> None:
    now = [100.0]
    circuit = Circuit(base_s=0.5, max_s=4.0, clock=lambda: now[0], jitter=lambda: 1.0)
    pauses = []
    for _ in range(6):
        circuit.check()
        pauses.append(circuit.record_failure())
        with pytest.raises(OperatorUnavailableError) as open_:
            circuit.check()
        assert open_.value.retry_after == max(1, int(-(-pauses[-1] // 1)))
        now[0] += pauses[-1]
    assert pauses == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    circuit.check()  # half-open: one probe
    with pytest.raises(OperatorUnavailableError):
        circuit.check()  # others wait for the probe
    circuit.record_success()
    assert circuit.failures == 0 and not circuit.is_open
    half = Circuit(base_s=2.0, clock=lambda: now[0], jitter=lambda: 0.0)
    assert half.record_failure() == 1.0  # equal jitter: at least half the pause


async def test_protocol_handles_huge_responses_without_recursion() -> None:
    """A flag sync of a big folder arrives as thousands of lines in one read: no RecursionError."""
    loop = asyncio.get_running_loop()
    protocol = GatewayImapProtocol(loop, on_lost=lambda _exc: None)

    class Transport:
        def write(self, data: bytes) -> None:
            pass

    protocol.transport = Transport()
    protocol.state = aio.SELECTED
    command = FetchCommand("A1", "1:*", "(UID FLAGS)", prefix="UID", loop=loop)
    task = asyncio.ensure_future(protocol.execute(command))
    await asyncio.sleep(0)
    count = 20_000
    payload = b"".join(b"* %d FETCH (UID %d FLAGS (\\Seen))\r\n" % (i, i) for i in range(1, count + 1))
    protocol.data_received(payload[:300_001])  # split mid-line
    protocol.data_received(payload[300_001:] + b"A1 OK Fetch completed.\r\n")
    response = await asyncio.wait_for(task, 1)
    assert response.result == "OK"
    assert len(response.lines) == count + 1
    assert response.lines[-2] == b"%d FETCH (UID %d FLAGS (\\Seen))" % (count, count)
