"""How the companion logs into the operator as a gateway: one interface, three strategies.

MSSanté operators differ (DOMAIN.md, "Operator interface"): some give a gateway a master account,
the Ségur "API LPS" points at bearer tokens, the 2014 baseline at mutual TLS. Each strategy turns
an :class:`ActingIdentity` into a :class:`SaslLogin` that both IMAP (``AUTHENTICATE``) and SMTP
submission (``AUTH``) carry, so the two protocols can never authenticate differently.

* :class:`MasterUserAuth` — the gateway's own password, acting for the mailbox: SASL PLAIN with
  ``authzid`` = mailbox (``authzid`` style), or ``mailbox*master`` as the login (``dovecot`` style).
* :class:`BearerJwtAuth` — a short ES256 JWT signed by the companion, ``sub`` = mailbox, over
  XOAUTH2 or OAUTHBEARER.
* :class:`ClientCertificateAuth` — SASL EXTERNAL: the TLS client certificate (``client_cert_file``)
  authenticates the gateway, ``authzid`` names the mailbox.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from backend.mail.operator import sasl
from backend.mail.operator.bearer import BearerTokenIssuer
from backend.mail.operator.identity import ActingIdentity
from backend.mail.operator.sasl import SaslLogin
from core.settings import OperatorSettings


class GatewayAuth(ABC):
    """Produces the SASL exchange that logs the gateway into one mailbox."""

    #: Settings name of the strategy (``OperatorSettings.auth``).
    name: ClassVar[str]
    #: The strategy only works over TLS with a client certificate.
    requires_client_certificate: ClassVar[bool] = False

    @abstractmethod
    def login(self, identity: ActingIdentity, *, host: str, port: int) -> SaslLogin:
        """The exchange for ``identity.mailbox``; ``host``/``port`` go where a mechanism wants them."""


class MasterUserAuth(GatewayAuth):
    """Master user with an authorization identity (Dovecot master users, Cyrus proxy admins…)."""

    name = "master"

    def __init__(self, *, user: str, password: str, style: Literal["authzid", "dovecot"] = "dovecot") -> None:
        if not user or not password:
            raise ValueError("master_user and master_password are required for master login")
        if "*" in user or "\0" in user or "\0" in password:
            raise ValueError("master_user must not contain '*' or NUL")
        self._user = user
        self._password = password
        self._style = style

    def login(self, identity: ActingIdentity, *, host: str, port: int) -> SaslLogin:
        if self._style == "authzid":
            return sasl.plain(authzid=identity.mailbox, authcid=self._user, password=self._password)
        # Dovecot's auth_master_user_separator: "<login user>*<master user>", no authzid
        return sasl.plain(authzid="", authcid=f"{identity.mailbox}*{self._user}", password=self._password)

    def __repr__(self) -> str:
        return f"MasterUserAuth(style={self._style!r})"


class BearerJwtAuth(GatewayAuth):
    """A fresh short JWT for every login, over XOAUTH2 or OAUTHBEARER."""

    name = "bearer"

    def __init__(
        self, *, issuer: BearerTokenIssuer, mechanism: Literal["XOAUTH2", "OAUTHBEARER"] = "OAUTHBEARER"
    ) -> None:
        self._issuer = issuer
        self._mechanism = mechanism

    @property
    def mechanism(self) -> str:
        return self._mechanism

    @property
    def token_issuer(self) -> BearerTokenIssuer:
        return self._issuer

    def login(self, identity: ActingIdentity, *, host: str, port: int) -> SaslLogin:
        token = self._issuer.mint(identity)
        if self._mechanism == "XOAUTH2":
            return sasl.xoauth2(user=identity.mailbox, token=token)
        return sasl.oauthbearer(user=identity.mailbox, token=token, host=host, port=port)

    def __repr__(self) -> str:
        return f"BearerJwtAuth(mechanism={self._mechanism!r})"


class ClientCertificateAuth(GatewayAuth):
    """SASL EXTERNAL: the certificate in the TLS context is the credential."""

    name = "certificate"
    requires_client_certificate = True

    def login(self, identity: ActingIdentity, *, host: str, port: int) -> SaslLogin:
        return sasl.external(authzid=identity.mailbox)

    def __repr__(self) -> str:
        return "ClientCertificateAuth()"


def gateway_auth_from_settings(settings: OperatorSettings) -> GatewayAuth:
    """The strategy named by ``settings.auth``; a missing piece fails here, at start-up."""
    if settings.auth == "master":
        return MasterUserAuth(user=settings.master_user, password=settings.master_password, style=settings.master_style)
    if settings.auth == "bearer":
        if not settings.bearer_key_file:
            raise ValueError("bearer_key_file is required for bearer login")
        issuer = BearerTokenIssuer.from_path(
            settings.bearer_key_file, issuer=settings.bearer_issuer, ttl_s=settings.bearer_ttl_s
        )
        return BearerJwtAuth(issuer=issuer, mechanism=settings.bearer_mechanism)
    if not settings.client_cert_file:
        raise ValueError("client_cert_file is required for certificate login")
    if settings.tls == "plain":
        raise ValueError("certificate login needs TLS (starttls or implicit)")
    return ClientCertificateAuth()
