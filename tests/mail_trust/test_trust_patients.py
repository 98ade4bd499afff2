"""Conversation rules with patients: a professional starts, [FIN] ends, pharmacies may be written to first."""

from __future__ import annotations

import pytest

from backend.mail.trust import (
    FIN_SUBJECT,
    PatientPolicy,
    SenderKind,
    is_end_of_conversation,
    is_patient_address,
    is_valid_patient_address,
    patient_rules,
)

KINDS: list[SenderKind] = ["nominative", "organisational", "applicative"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_professional_may_always_start(kind: SenderKind) -> None:
    outcome = patient_rules(sender_kind=kind, is_reply_to_patient=False, patient_started=False)
    assert (outcome.allowed, outcome.reason) == (True, "professional_starts")


@pytest.mark.parametrize("kind", KINDS)
def test_replies_continue_a_conversation_a_professional_started(kind: SenderKind) -> None:
    outcome = patient_rules(sender_kind=kind, is_reply_to_patient=True, patient_started=False)
    assert (outcome.allowed, outcome.reason) == (True, "reply_in_conversation")


def test_a_patient_may_start_only_with_an_organisational_mailbox_by_default() -> None:
    ok = patient_rules(sender_kind="organisational", is_reply_to_patient=True, patient_started=True)
    assert (ok.allowed, ok.reason) == (True, "patient_started_here")
    for kind in ("nominative", "applicative"):
        refused = patient_rules(sender_kind=kind, is_reply_to_patient=True, patient_started=True)
        assert (refused.allowed, refused.reason) == (False, "patient_may_not_start_here")


def test_the_policy_is_configurable() -> None:
    policy = PatientPolicy(patient_may_start_with=frozenset({"organisational", "nominative"}))
    outcome = patient_rules(sender_kind="nominative", is_reply_to_patient=True, patient_started=True, policy=policy)
    assert outcome.allowed
    closed = PatientPolicy(patient_may_start_with=frozenset())
    assert not patient_rules(
        sender_kind="organisational", is_reply_to_patient=True, patient_started=True, policy=closed
    ).allowed


def test_fin_subject_ends_the_conversation() -> None:
    assert FIN_SUBJECT == "[FIN]"
    assert is_end_of_conversation("[FIN]")
    assert is_end_of_conversation("  [FIN] ")
    assert not is_end_of_conversation("[FIN] résultats")
    assert not is_end_of_conversation("Re: [FIN]")
    assert not is_end_of_conversation("[fin]")


def test_patient_address_helpers() -> None:
    assert is_patient_address("255081416802538@patient.mssante.fr")
    assert is_patient_address("255081416802539@Patient.MSSante.fr")  # a patient, even with a bad key
    assert not is_valid_patient_address("255081416802539@patient.mssante.fr")
    assert is_valid_patient_address("185052A12345633@patient.mssante.fr")
    assert not is_patient_address("helene.garnier@pharmacien.mssante.fr")
    assert not is_patient_address("x@evil.patient.mssante.fr")
    assert not is_patient_address("<255081416802538@patient.mssante.fr>")
    assert is_patient_address("255081416802538@patient.mes.test", patient_domain="patient.mes.test")
