"""aioimaplib's protocol, with the few behaviours a gateway cannot live without.

aioimaplib 2.0 frames commands, tags, literals and APPEND well; :class:`GatewayImapProtocol`
changes only what breaks a long-lived, many-message gateway session:

* **Linear response handling.** ``FETCH`` completeness is tracked incrementally
  (:class:`FetchCommand`).
* **No recursion per line.** The stock ``_handle_responses`` recurses once per response line and
  copies the buffer tail each time: a 256 KiB read of short ``FETCH`` lines (a flag sync of a big
  folder) blows the recursion limit. Here it is a loop over offsets.
* **Untagged responses go to the command in flight, whole.** The stock code routes by response
  name and drops what it does not know (``VANISHED``, ``ENABLED``, ``EXISTS`` during a fetch) and
  strips every ``"* "`` inside the line. The session runs one command at a time, so everything
  belongs to that command; parsing is ours (:mod:`imap_parse`).
* **The rest of a line after a literal is always recorded**, even when empty, so a literal at
  the end of a response (a folder name in ``LIST``) is not confused with the next response.
* **SASL continuations are answered** (:class:`AuthenticateCommand`): the initial response when
  the server has no SASL-IR, and the mechanism's reply to an error challenge — the fix for the
  hang after a refused bearer token.
* **A lost connection fails the command in flight** at once instead of leaving it to time out.
* **An untagged listener** (``untagged_listener``) hears every untagged response, whatever command
  it came with: the IDLE watcher (:mod:`idle`) must not miss an ``EXISTS`` reported with the answer
  to some other command.
* **STARTTLS** (absent from aioimaplib): :meth:`start_tls` upgrades the transport in place.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl
from collections.abc import Callable
from typing import Any

from aioimaplib import aioimaplib as aio

from backend.mail.operator import sasl
from backend.mail.operator.imap_parse import capabilities_from
from backend.mail.operator.sasl import SaslLogin

# aioimaplib logs every byte it receives at DEBUG and unknown lines at INFO: message content and
# addresses must never reach a log (core/logging.py), whatever the process's log level is.
logging.getLogger("aioimaplib").setLevel(logging.WARNING)

CRLF = b"\r\n"


class ConnectionLostError(aio.AioImapException):  # type: ignore[misc]
    """The operator closed the connection (or the network did) while a command was in flight."""

    def __init__(self) -> None:
        super().__init__("connection lost")


class AuthenticateCommand(aio.Command):  # type: ignore[misc]
    """``AUTHENTICATE <mech> [<initial response>]`` that answers the server's continuations."""

    def __init__(self, tag: str, login: SaslLogin, *, sasl_ir: bool, loop: asyncio.AbstractEventLoop) -> None:
        self.login = login
        self.initial_sent = sasl_ir
        #: Challenges the server sent after the initial response (decoded is the caller's business).
        self.challenges: list[bytes] = []
        args = (login.mechanism, sasl.encode(login.initial_response)) if sasl_ir else (login.mechanism,)
        super().__init__("AUTHENTICATE", tag, *args, loop=loop)

    def answer(self, line: bytes) -> bytes:
        """The line to send for a ``+ …`` continuation."""
        if not self.initial_sent:
            self.initial_sent = True
            return base64.b64encode(self.login.initial_response)
        self.challenges.append(line[1:].strip())
        reply = self.login.challenge_reply
        return b"*" if reply is None else base64.b64encode(reply)


class FetchCommand(aio.FetchCommand):  # type: ignore[misc]
    """``FETCH`` whose "is this response complete?" check is incremental and ignores quoted text.

    The stock check re-joins every line since the last ``FETCH`` line on each new line (quadratic:
    minutes for a 20 000-message flag sync) and counts parentheses inside quoted strings (a file
    named ``a(b.pdf`` in a BODYSTRUCTURE makes it wait for data that never comes).
    """

    def __init__(self, tag: str, *args: str, prefix: str | None = None, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(tag, *args, prefix=prefix, loop=loop)
        self._depth = 0

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        if isinstance(line, bytes) and result == "Pending":
            if self.FETCH_MESSAGE_DATA_RE.match(line):
                self._depth = 0
            self._depth += _paren_balance(line)
        super().append_to_resp(line, result)

    def wait_data(self) -> bool:
        return self._depth != 0


#: A quoted string, to its closing quote or to the end of the line (then the rest is quoted).
_QUOTED = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)


def _paren_balance(line: bytes) -> int:
    """Opened minus closed parentheses outside quoted strings.

    Counted in C (``bytes.count`` after cutting the quoted strings out): a Python loop per byte cost
    ~6 us per FETCH line (four times this), on every line of every response.
    """
    if b'"' in line:
        line = _QUOTED.sub(b"", line)
    return line.count(b"(") - line.count(b")")


class GatewayImapProtocol(aio.IMAP4ClientProtocol):  # type: ignore[misc]
    """See the module docstring. One command at a time: the session serialises them."""

    transport: Any
    loop: asyncio.AbstractEventLoop

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[Exception | None], None]) -> None:
        super().__init__(loop, None)
        self._on_lost = on_lost
        self.lost = False
        #: Called with each untagged response (without ``"* "``) before it goes to the command.
        self.untagged_listener: Callable[[bytes], None] | None = None

    # --- connection -----------------------------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        for command in self._in_flight():
            if not command._event.is_set():
                command._exception = ConnectionLostError()
                command.close(b"connection lost", "KO")
        self._on_lost(exc)

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Upgrade after a successful ``STARTTLS``; the caller re-reads the capabilities."""
        transport = await self.loop.start_tls(self.transport, self, context, server_hostname=server_hostname)
        if transport is None:
            raise ConnectionLostError()
        self.transport = transport

    def _in_flight(self) -> list[Any]:
        commands = [self.pending_sync_command, *self.pending_async_commands.values()]
        return [c for c in commands if c is not None]

    # --- reading --------------------------------------------------------------------------------
    def _handle_responses(
        self, data: bytes, line_handler: Callable[[bytes, Any], Any], current_cmd: Any = None
    ) -> None:
        pos = 0
        while True:
            if pos >= len(data):
                if self.pending_sync_command is not None:
                    self.pending_sync_command.flush()
                if current_cmd is not None and current_cmd.wait_data():
                    raise aio.IncompleteRead(current_cmd)
                return
            if current_cmd is not None and current_cmd.wait_literal_data():
                data = current_cmd.append_literal_data(data[pos:] if pos else data)
                pos = 0
                if current_cmd.wait_literal_data():
                    raise aio.IncompleteRead(current_cmd)
            end = data.find(CRLF, pos)
            if end < 0:
                raise aio.IncompleteRead(current_cmd, data[pos:])
            line = data[pos:end]
            pos = end + 2
            cmd = line_handler(line, current_cmd)
            literal = aio.literal_data_re.match(line)
            if literal:
                if cmd is None:
                    cmd = aio.Command("NIL", "unused")
                cmd.begin_literal_data(int(literal.group("size")))
                current_cmd = cmd
            elif cmd is not None and cmd.wait_data():
                current_cmd = cmd
            else:
                current_cmd = None

    def _handle_line(self, line: bytes, current_cmd: Any) -> Any:
        if not line:
            if current_cmd is not None:
                current_cmd.append_to_resp(b"")  # the (empty) rest of a line after a literal
            return current_cmd
        return super()._handle_line(line, current_cmd)

    def _untagged_response(self, line: bytes) -> Any:
        text = line[2:] if line.startswith(b"* ") else line[1:].lstrip()
        if self.untagged_listener is not None:
            self.untagged_listener(text)
        command = self.pending_sync_command
        if command is None and len(self.pending_async_commands) == 1:
            command = next(iter(self.pending_async_commands.values()))
        if command is not None:
            command.append_to_resp(text)
        return command

    def _continuation(self, line: bytes) -> None:
        command = self.pending_sync_command
        if isinstance(command, AuthenticateCommand):
            self.transport.write(command.answer(line) + CRLF)
            return
        super()._continuation(line)

    # --- capability (the stock parser keeps the word CAPABILITY in the set) ---------------------
    async def capability(self) -> None:
        response = await self.execute(aio.Command("CAPABILITY", self.new_tag(), loop=self.loop))
        announced: set[str] = set()
        for item in response.lines[:-1]:
            if isinstance(item, bytes) and item.upper().startswith(b"CAPABILITY"):
                announced |= capabilities_from(item.decode("ascii", "replace"))
        self.capabilities = announced
        if "IMAP4REV1" not in announced:
            raise aio.Error("server not IMAP4rev1")
