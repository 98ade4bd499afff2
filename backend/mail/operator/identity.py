"""Who a session acts for: the mailbox logged into, and the professional and device acting on it.

The companion is a trusted gateway (ARCHITECTURE.md, trust model): it logs into an operator
mailbox on behalf of the acting professional, and tells the operator who that is (``ID`` on IMAP,
claims of the bearer JWT), so actions on an organisational mailbox stay attributable. Sessions
are pooled by this triple: two professionals never share a session, nor two devices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contracts.errors import ErrorCode
from core.errors import DomainError

# Deliberately narrow: these values end up in IMAP quoted strings, SASL payloads and JWT claims.
_MAILBOX = re.compile(r"[A-Za-z0-9!#$%&'+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}")
_TOKEN = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")


@dataclass(frozen=True, slots=True)
class ActingIdentity:
    """The key of a pooled session. ``mailbox`` is normalised to lower case."""

    mailbox: str
    #: IdNat of the acting professional (RPPS ``8…`` or ADELI ``0…``), as PSC gives it.
    idnat: str
    #: The companion's id of the enrolled device the request comes from.
    device_id: str

    def __post_init__(self) -> None:
        if _MAILBOX.fullmatch(self.mailbox) is None:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "mailbox is not a plain address")
        if _TOKEN.fullmatch(self.idnat) is None or _TOKEN.fullmatch(self.device_id) is None:
            raise DomainError(ErrorCode.VALIDATION_FAILED, "idnat or device id has unexpected characters")
        object.__setattr__(self, "mailbox", self.mailbox.lower())

    def __repr__(self) -> str:
        # repr lands in logs and tracebacks: keep the address out of them
        return f"ActingIdentity(device_id={self.device_id!r})"
