"""The TLS context towards the operator: verified server, TLS ≥ 1.2, optional client certificate.

PGSSI-S asks for TLS 1.2 at least (1.3 preferred, which OpenSSL negotiates when both sides can).
A ``ca_file`` pins the operator's chain instead of the system store: operators in the MSSanté
space often use the IGC-Santé chain, which system stores do not carry. Hostname checking stays on.
"""

from __future__ import annotations

import ssl

from core.settings import OperatorSettings


def client_ssl_context(*, ca_file: str = "", client_cert_file: str = "", client_key_file: str = "") -> ssl.SSLContext:
    """A client context; ``ca_file`` replaces the system trust store when given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert_file:
        context.load_cert_chain(client_cert_file, client_key_file or None)
    return context


def ssl_context_from_settings(settings: OperatorSettings) -> ssl.SSLContext | None:
    """``None`` for ``tls = plain`` (loopback tests only; production settings refuse it)."""
    if settings.tls == "plain":
        return None
    return client_ssl_context(
        ca_file=settings.ca_file, client_cert_file=settings.client_cert_file, client_key_file=settings.client_key_file
    )
