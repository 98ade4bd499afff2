"""The MSSanté trust space: which recipients may be written to, and the rules with patients.

``TrustSpace`` holds the liste blanche (operator domains) and checks recipients; ``patient_rules``
says who may write first in a conversation with a patient. See each module for the facts and how
sure we are of them.
"""

from backend.mail.trust.addresses import AddressError, ParsedAddress, normalize_domain, parse_address
from backend.mail.trust.liste_blanche import DomainList, TrustListError, parse_liste_blanche
from backend.mail.trust.nir import is_valid_nir, nir_key
from backend.mail.trust.patients import (
    DEFAULT_PATIENT_DOMAIN,
    DEFAULT_PATIENT_POLICY,
    FIN_HEADER,
    FIN_SUBJECT,
    PatientPolicy,
    PatientRuleOutcome,
    PatientRuleReason,
    SenderKind,
    is_end_of_conversation,
    is_patient_address,
    is_valid_patient_address,
    patient_rules,
)
from backend.mail.trust.sandbox import SANDBOX_DOMAINS, sandbox_domain_list
from backend.mail.trust.space import (
    RecipientCheck,
    RecipientKind,
    RefusalReason,
    TrustSpace,
    TrustSpaceStatus,
)

__all__ = [
    "DEFAULT_PATIENT_DOMAIN",
    "DEFAULT_PATIENT_POLICY",
    "FIN_HEADER",
    "FIN_SUBJECT",
    "SANDBOX_DOMAINS",
    "AddressError",
    "DomainList",
    "ParsedAddress",
    "PatientPolicy",
    "PatientRuleOutcome",
    "PatientRuleReason",
    "RecipientCheck",
    "RecipientKind",
    "RefusalReason",
    "SenderKind",
    "TrustListError",
    "TrustSpace",
    "TrustSpaceStatus",
    "is_end_of_conversation",
    "is_patient_address",
    "is_valid_nir",
    "is_valid_patient_address",
    "nir_key",
    "normalize_domain",
    "parse_address",
    "parse_liste_blanche",
    "patient_rules",
    "sandbox_domain_list",
]
