"""A throw-away certificate authority for TLS between the companion and its test peers.

One CA signs the server certificate of the Dovecot operator (so the companion verifies it with a
``ca_file``, as it would an operator's real chain) and the companion's client certificates (so
Dovecot can log the gateway in with SASL EXTERNAL). Keys are P-256, certificates live one day.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """Paths of a PEM certificate and its unencrypted PKCS#8 key."""

    cert_file: Path
    key_file: Path


class TestCertificateAuthority:
    """A self-signed root that issues server and client certificates into ``directory``."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, directory: Path, *, name: str = "mss-companion test CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self._cert = cert
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue_server(
        self, stem: str = "server", *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
    ) -> IssuedCertificate:
        """A server certificate valid for ``hosts`` (DNS names or IP addresses)."""
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._issue(stem, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, names)

    def issue_client(self, stem: str, *, common_name: str) -> IssuedCertificate:
        """A client certificate whose CN is the identity the server derives from it."""
        return self._issue(stem, common_name, ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def _issue(
        self, stem: str, common_name: str, usage: x509.ObjectIdentifier, names: list[x509.GeneralName]
    ) -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        cert_file = self.directory / f"{stem}.crt.pem"
        key_file = self.directory / f"{stem}.key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_file.chmod(0o600)
        return IssuedCertificate(cert_file=cert_file, key_file=key_file)
