"""Patients' Mon Espace Santé addresses and the conversation rules with them.

What we know (DOMAIN.md, "Patients"):
- A patient's address is ``<NIR with key>@patient.mssante.fr`` (H); the domain is configurable
  (``TrustSpaceSettings.patient_domain``).
- A professional starts the conversation; the patient can then reply (H).
- A message whose subject is exactly ``[FIN]`` ends the conversation: the patient can no longer
  reply (H). Operators also read an ``X-MSS-MES: FIN`` header on such messages (M).
- Exception: a patient may write first to a pharmacy's organisational mailbox (M-H). The mailbox
  kind alone cannot tell a pharmacy from another structure, and Mon Espace Santé enforces who a
  patient may write to; the policy below therefore lists mailbox *kinds*, configurable, with
  ``organisational`` as the default.

:func:`patient_rules` is pure: the mail service gives it what it knows about the thread and gets
back whether the professional may send in it, with a stable reason code for the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.mail.trust.addresses import AddressError, parse_address
from backend.mail.trust.nir import is_valid_nir

DEFAULT_PATIENT_DOMAIN = "patient.mssante.fr"

#: Subject that ends a conversation with a patient (compared after trimming spaces) (H).
FIN_SUBJECT = "[FIN]"
#: Header set on messages to patients that must not be answered (M).
FIN_HEADER = ("X-MSS-MES", "FIN")

SenderKind = Literal["nominative", "organisational", "applicative"]

PatientRuleReason = Literal[
    "professional_starts",
    "reply_in_conversation",
    "patient_started_here",
    "patient_may_not_start_here",
]


def is_patient_address(address: str, *, patient_domain: str = DEFAULT_PATIENT_DOMAIN) -> bool:
    """True when ``address`` is on the patient domain, whether or not its NIR is valid.

    "Is this a patient?" decides which rules apply (and that the address must never be logged or
    echoed); whether it may be written to is :meth:`TrustSpace.check_recipients`' question.
    """
    try:
        parsed = parse_address(address)
    except AddressError:
        return False
    return parsed.domain == patient_domain.lower()


def is_valid_patient_address(address: str, *, patient_domain: str = DEFAULT_PATIENT_DOMAIN) -> bool:
    """On the patient domain, and the local part is a NIR with a correct key."""
    try:
        parsed = parse_address(address)
    except AddressError:
        return False
    return parsed.domain == patient_domain.lower() and is_valid_nir(parsed.local)


def is_end_of_conversation(subject: str) -> bool:
    """The subject is exactly ``[FIN]`` (surrounding spaces ignored): the patient cannot reply."""
    return subject.strip() == FIN_SUBJECT


@dataclass(frozen=True, slots=True)
class PatientPolicy:
    """The configurable part of the rules (M-H facts)."""

    #: Mailbox kinds a patient may write to first. DOMAIN.md: a pharmacy's organisational mailbox.
    patient_may_start_with: frozenset[SenderKind] = frozenset({"organisational"})


DEFAULT_PATIENT_POLICY = PatientPolicy()


@dataclass(frozen=True, slots=True)
class PatientRuleOutcome:
    allowed: bool
    reason: PatientRuleReason


def patient_rules(
    *,
    sender_kind: SenderKind,
    is_reply_to_patient: bool,
    patient_started: bool,
    policy: PatientPolicy = DEFAULT_PATIENT_POLICY,
) -> PatientRuleOutcome:
    """May a professional mailbox of ``sender_kind`` send this message to a patient?

    - Not in a patient-started thread: yes. A new message is the professional starting the
      conversation (``professional_starts``); a reply continues one a professional started
      (``reply_in_conversation``).
    - In a thread the patient started: yes only if patients may start with this kind of mailbox
      (``patient_started_here``); otherwise the thread is outside the MSSanté rules
      (``patient_may_not_start_here``) and the professional should start a new conversation,
      which is always allowed.

    Ending the conversation is the caller's choice: send with subject :data:`FIN_SUBJECT` (and
    :data:`FIN_HEADER`); see :func:`is_end_of_conversation`.
    """
    if patient_started:
        if sender_kind in policy.patient_may_start_with:
            return PatientRuleOutcome(allowed=True, reason="patient_started_here")
        return PatientRuleOutcome(allowed=False, reason="patient_may_not_start_here")
    if is_reply_to_patient:
        return PatientRuleOutcome(allowed=True, reason="reply_in_conversation")
    return PatientRuleOutcome(allowed=True, reason="professional_starts")
