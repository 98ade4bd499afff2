"""Strict parsing of one recipient address, before any trust decision.

The trust check compares a domain with the liste blanche, so the domain must be the one the
message will really go to. RFC 5322 allows display names, comments, quoted local parts, groups
and (obsolete) source routes: each lets a string *look* like one address while routing to
another (``"dr.x@chu.mssante.fr" <evil@example.com>``, ``a@chu.mssante.fr,b@example.com``). We
accept none of them: a recipient is a bare ``local@domain``, nothing else.

- Local part: a dot-atom of ASCII ``atext`` minus ``%`` and ``!`` (old relay and bang-path
  routing). No SMTPUTF8: MSSanté operators publish ASCII local parts (M).
- Domain: lower-cased and IDNA-encoded (A-labels, stdlib codec) so ``Hôpital.fr`` and
  ``xn--hpital-fxa.fr`` compare equal; at least two labels; no IP literal; no trailing dot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LOCAL = re.compile(r"[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*\Z")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_MAX_ADDRESS = 254
_MAX_LOCAL = 64
_MAX_DOMAIN = 253


class AddressError(ValueError):
    """The text is not one bare ``local@domain`` address. The message never quotes the input."""


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """A syntactically valid address: local part as given, domain normalised to lower-case A-labels."""

    local: str
    domain: str

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"


def normalize_domain(text: str) -> str:
    """Lower-case A-label form of a domain name; :class:`AddressError` when it is not a host name.

    Used for both sides of the comparison: the recipient's domain and each liste blanche entry.
    """
    if not text or text != text.strip() or text.endswith("."):
        raise AddressError("malformed domain")
    try:
        ascii_domain = text.lower().encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AddressError("malformed domain") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > _MAX_DOMAIN or len(labels) < 2:
        raise AddressError("malformed domain")
    if not all(_LABEL.match(label) for label in labels):
        raise AddressError("malformed domain")
    if labels[-1].isdigit():  # an IPv4 address is not a mail domain
        raise AddressError("malformed domain")
    return ascii_domain


def parse_address(text: str) -> ParsedAddress:
    """Parse one recipient address strictly (see the module docstring for what is refused)."""
    candidate = text.strip()
    if not candidate or len(candidate) > _MAX_ADDRESS or candidate.count("@") != 1:
        raise AddressError("malformed address")
    local, _, domain = candidate.partition("@")
    if len(local) > _MAX_LOCAL or not local.isascii() or not _LOCAL.match(local):
        raise AddressError("malformed address")
    return ParsedAddress(local=local, domain=normalize_domain(domain))
