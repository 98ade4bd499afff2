"""Pro Santé Connect: the OIDC client (``PscClient``) and the mapping of its claims (``parse_identity``)."""

from enrolment.psc.claims import PscActivity, PscIdentity, parse_identity
from enrolment.psc.client import AuthorizationRequest, PscClient, PscLogin, TokenAuthMethod
from enrolment.psc.discovery import ProviderMetadata

__all__ = [
    "AuthorizationRequest",
    "ProviderMetadata",
    "PscActivity",
    "PscClient",
    "PscIdentity",
    "PscLogin",
    "TokenAuthMethod",
    "parse_identity",
]
