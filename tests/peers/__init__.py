"""Test peers shared by every test that talks to "the outside": real servers, never fakes.

* :class:`tests.peers.dovecot.DovecotInstance` — the MSSanté operator (Dovecot 2.3: IMAP, IMAPS,
  STARTTLS, LMTP; master user, ES256 bearer JWTs, client certificates; ``deliver()`` by LMTP).
* :class:`tests.peers.submission_relay.SubmissionRelay` — the operator's SMTP submission server
  (aiosmtpd; AUTH checked by Dovecot; delivers by LMTP; records envelopes).
* :class:`tests.peers.certs.TestCertificateAuthority` — the throw-away CA behind their TLS.
* :mod:`tests.peers.fixtures` — thin pytest fixtures over them (one Dovecot per test run, fresh
  mailboxes per test).

The classes are pytest-agnostic: a script, a benchmark or the dev sandbox can use them too.
"""
