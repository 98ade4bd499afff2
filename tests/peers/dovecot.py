"""A private Dovecot 2.3 playing the MSSanté operator: IMAP (plain, STARTTLS, IMAPS) and LMTP.

Pytest-agnostic: build a :class:`DovecotInstance`, ``start()`` it, ``stop()`` it (or use it as a
context manager). Everything it needs lives in one directory under ``/tmp`` with mode 0755:
Dovecot's unprivileged processes (``dovecot``, ``dovenull``) must read the config, the
passwd-file and the bearer keys, which pytest's ``tmp_path`` (under a 0700 directory) forbids.

What the operator offers, as a real one would:

* **users**, one passwd-file each (``add_user`` at runtime, visible to a running Dovecot at once);
* a **master user** (``auth_master_user_separator = *``): the gateway logs in as
  ``mailbox*master`` or with SASL PLAIN ``authzid=mailbox``;
* an **oauth2 passdb** validating the companion's ES256 bearer JWTs locally
  (``install_bearer_key`` writes the public key where Dovecot looks: ``keys/<azp>/ES256/<kid>``);
* **TLS** from a throw-away CA (``ca_file``) with client certificates verified, and SASL
  **EXTERNAL** for a gateway whose certificate CN is ``gateway_cn`` (``issue_client_certificate``);
* special-use folders (Sent, Drafts, Trash, Junk), CONDSTORE/QRESYNC, ``imap_id_log = *`` so the
  acting professional announced in ``ID`` shows in the log (``log_text()``);
* opt-in, an operator that **calls out on delivery**: ``start(push_notification_url=…)`` loads the
  ``push_notification`` plugin for LMTP with the OX driver pointing at that URL (userinfo in the URL
  becomes HTTP Basic auth), and METADATA storage; the OX driver only notifies a mailbox whose
  ``/private/vendor/vendor.dovecot/http-notify`` metadata is set: ``enable_push_notification()``.

For tests only: no auth failure delay and no anvil penalty (repeated failures stay instant),
plaintext logins allowed without TLS.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import smtplib
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.peers.certs import IssuedCertificate, TestCertificateAuthority
from tests.peers.ports import free_port, wait_listening, wait_refused

MAIL_UID = 5000
DEFAULT_DOMAIN = "pharmacie.mssante.fr"
DEFAULT_ISSUER = "https://companion.mssante.test"


@dataclass(frozen=True, slots=True)
class MailUser:
    """A mailbox of the operator and its own password (the gateway never uses it)."""

    address: str
    password: str

    @property
    def local_part(self) -> str:
        return self.address.split("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.split("@", 1)[1]


class DovecotError(RuntimeError):
    """Dovecot did not start, stop or deliver; the message carries the tail of its log."""


class DovecotInstance:
    """One private Dovecot process with its config, users, keys, maildirs and log."""

    def __init__(
        self,
        *,
        root: Path | None = None,
        master_user: str = "mss-companion",
        master_password: str | None = None,
        issuers: tuple[str, ...] = (DEFAULT_ISSUER,),
        gateway_cn: str = "mss-companion-gateway",
        host: str = "127.0.0.1",
    ) -> None:
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="mssc-dovecot-", dir="/tmp"))
        self._owns_root = root is None
        self.host = host
        self.master_user = master_user
        self.master_password = master_password or secrets.token_hex(16)
        self.issuers = issuers
        self.gateway_cn = gateway_cn
        self.imap_port = 0
        self.imaps_port = 0
        self.lmtp_port = 0
        self._users: dict[str, MailUser] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self.ca: TestCertificateAuthority | None = None
        #: Where the OX push_notification driver calls on delivery (``None``: the plugin is not loaded).
        self.push_notification_url: str | None = None

    # --- paths ---------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def ca_file(self) -> Path:
        """The CA that signed Dovecot's server certificate (the companion's ``ca_file``)."""
        return self.root / "tls" / "ca.pem"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, *, timeout_s: float = 10.0, push_notification_url: str | None = None) -> None:
        """Write the config, start ``dovecot -F`` and wait until IMAP, IMAPS and LMTP listen.

        ``push_notification_url``: also call out on every delivery to INBOX (OX driver, see the module
        docstring); the default is no plugin at all.
        """
        if self.running:
            return
        if push_notification_url is not None:
            if any(c in push_notification_url for c in ' \t\n"') or not push_notification_url.startswith("http"):
                raise ValueError("push_notification_url must be a plain http(s) URL")
            self.push_notification_url = push_notification_url
        self._prepare_tree()
        self.imap_port, self.imaps_port, self.lmtp_port = free_port(), free_port(), free_port()
        self.config_file.write_text(self._config())
        self._process = subprocess.Popen(
            ["/usr/sbin/dovecot", "-F", "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            for port in (self.imap_port, self.imaps_port, self.lmtp_port):
                wait_listening(self.host, port, timeout_s=timeout_s)
        except TimeoutError:
            self.stop()
            raise DovecotError(f"dovecot did not start:\n{self._stderr()}\n{self.log_tail()}") from None

    def stop(self, *, grace_s: float = 0.2, timeout_s: float = 10.0) -> None:
        """SIGTERM the master, give it ``grace_s``, then SIGKILL its whole process group; wait.

        Dovecot 2.3's orderly shutdown can take seconds (a login process waits out a stats-writer
        handshake timeout), and client processes (imap, lmtp) may outlive the master and keep
        serving their connections: an operator that is "down" must drop them too. They all share
        the master's process group. Waiting matters: a new instance may reuse the ports only once
        the old master is gone.
        """
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)
        # killed login processes may hold the listening sockets a moment longer: until they are
        # gone, a connection would sit in the backlog instead of being refused
        for port in (self.imap_port, self.imaps_port, self.lmtp_port):
            if port:
                wait_refused(self.host, port, timeout_s=timeout_s)
        if process.stderr is not None:
            process.stderr.close()

    def restart(self, *, timeout_s: float = 10.0) -> None:
        """Stop and start again on the same ports (users, keys and mail are kept)."""
        ports = (self.imap_port, self.imaps_port, self.lmtp_port)
        self.stop(timeout_s=timeout_s)
        self._process = subprocess.Popen(
            ["/usr/sbin/dovecot", "-F", "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for port in ports:
            wait_listening(self.host, port, timeout_s=timeout_s)

    def drop_imap_sessions(self) -> int:
        """SIGKILL every ``imap`` process of this instance: each open IMAP connection drops at once (an
        operator's front end restarting, a network cut), while Dovecot itself keeps serving. Returns
        how many sessions were dropped."""
        master = self.pid
        if master is None:
            return 0
        dropped = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) != master:
                    continue
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except (OSError, ProcessLookupError):
                continue
            if title.endswith(b"/imap"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
                    dropped += 1
        return dropped

    def cleanup(self) -> None:
        """Stop and remove the directory (when this instance created it)."""
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotInstance:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    # --- users ---------------------------------------------------------------------------------
    def add_user(
        self, address: str | None = None, *, domain: str = DEFAULT_DOMAIN, password: str | None = None
    ) -> MailUser:
        """Create a mailbox (a unique ``u<hex>@domain`` by default); a running Dovecot sees it at once."""
        address = (address or f"u{secrets.token_hex(5)}@{domain}").lower()
        local, _, dom = address.partition("@")
        if not local or not dom or any(c in address for c in ":/\\\n\0") or address.startswith("."):
            raise ValueError("not a plain mailbox address")
        user = MailUser(address=address, password=password or secrets.token_hex(12))
        with self._lock:
            self._users[address] = user
            self._write_user(user)
        return user

    def remove_user(self, address: str) -> None:
        """Delete a mailbox's passdb/userdb entry (its mail stays on disk)."""
        with self._lock:
            self._users.pop(address.lower(), None)
            (self.users_dir / address.lower()).unlink(missing_ok=True)

    @property
    def users(self) -> tuple[MailUser, ...]:
        return tuple(self._users.values())

    @property
    def users_dir(self) -> Path:
        return self.root / "users"

    def _write_user(self, user: MailUser) -> None:
        # One passwd-file per user (``users/%Lu``): Dovecot re-reads a passwd-file at most once a
        # second (and only when mtime or size changed), so a user appended to a shared file may stay
        # invisible for up to a second. A new file is read on its first lookup: no wait at all.
        home = self.root / "mail" / user.domain / user.local_part
        line = f"{user.address}:{{PLAIN}}{user.password}:{MAIL_UID}:{MAIL_UID}::{home}::\n"
        tmp = self.users_dir / f".{user.address}.tmp"
        tmp.write_text(line)
        tmp.chmod(0o644)
        tmp.replace(self.users_dir / user.address)

    # --- bearer keys and certificates ----------------------------------------------------------
    def install_bearer_key(self, kid: str, public_pem: bytes, *, azp: str = "default") -> Path:
        """Trust a companion bearer key. Dovecot caches keys by kid: rotate with a new kid."""
        if "/" in kid or "/" in azp or kid.startswith("."):
            raise ValueError("kid and azp must be plain names")
        path = self.keys_dir / azp / "ES256" / kid
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        for parent in (self.keys_dir / azp, path.parent):
            parent.chmod(0o755)
        path.write_bytes(public_pem)
        path.chmod(0o644)
        return path

    def issue_client_certificate(self, common_name: str | None = None) -> IssuedCertificate:
        """A client certificate from Dovecot's CA; ``gateway_cn`` (default) is the trusted gateway."""
        if self.ca is None:
            raise DovecotError("start() the instance first")
        cn = common_name or self.gateway_cn
        return self.ca.issue_client(f"client-{secrets.token_hex(4)}", common_name=cn)

    def enable_push_notification(self, address: str) -> None:
        """Turn on the OX driver's notifications for one mailbox (``doveadm`` sets its metadata).

        The driver then posts ``user`` = the Dovecot user name: the address.
        """
        if self.push_notification_url is None:
            raise DovecotError("start(push_notification_url=…) first")
        value = f"user={address.lower()}"
        result = subprocess.run(
            [
                "/usr/bin/doveadm",
                "-c",
                str(self.config_file),
                "mailbox",
                "metadata",
                "set",
                "-u",
                address.lower(),
                "-s",
                "",
                "/private/vendor/vendor.dovecot/http-notify",
                value,
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if result.returncode != 0:
            raise DovecotError(f"doveadm metadata set failed: {result.stderr.decode(errors='replace')}")

    # --- delivery and observation ----------------------------------------------------------------
    def deliver(self, address: str, raw: bytes, *, envelope_from: str = "") -> None:
        """Put a message in a mailbox's INBOX through LMTP, as the operator's MTA would."""
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=10) as lmtp:
            refused = lmtp.sendmail(envelope_from or "<>", [address], raw)
        if refused:
            raise DovecotError(f"LMTP refused {sorted(refused)}")

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _stderr(self) -> str:
        process = self._process
        if process is None or process.stderr is None or process.poll() is None:
            return ""
        return process.stderr.read().decode(errors="replace")

    # --- files ---------------------------------------------------------------------------------
    def _prepare_tree(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for sub in ("run", "state", "keys", "tls", "users"):
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(0o755)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        os.chown(mail, MAIL_UID, MAIL_UID)
        (self.root / "master-users").write_text(f"{self.master_user}:{{PLAIN}}{self.master_password}\n")
        (self.root / "master-users").chmod(0o644)
        with self._lock:
            for user in self._users.values():
                self._write_user(user)
        self.ca = TestCertificateAuthority(self.root / "tls")
        self.ca.issue_server("server", hosts=("localhost", self.host))
        (self.root / "tls" / "server.key.pem").chmod(0o600)
        (self.root / "oauth2.conf.ext").write_text(
            f"introspection_mode = local\n"
            f"local_validation_key_dict = fs:posix:prefix={self.keys_dir}/\n"
            f"username_attribute = sub\n"
            f"issuers = {' '.join(self.issuers)}\n"
        )

    def _config(self) -> str:
        d = self.root
        return f"""# generated by tests/peers/dovecot.py
instance_name = mssc-test-{self.imap_port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
debug_log_path = {d}/dovecot.log
protocols = imap lmtp
listen = {self.host}

ssl = yes
ssl_cert = <{d}/tls/server.crt.pem
ssl_key = <{d}/tls/server.key.pem
ssl_ca = <{d}/tls/ca.pem
ssl_min_protocol = TLSv1.2
# ask every TLS client for a certificate; only SASL EXTERNAL needs one (no CRL in tests)
ssl_verify_client_cert = yes
ssl_require_crl = no
auth_ssl_username_from_cert = yes
ssl_cert_username_field = commonName

disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer external
auth_username_format = %Lu
auth_master_user_separator = *
auth_verbose = yes
# tests: no failure delay; no anvil auth penalty either (it grows 2, 4, 8, 15 s per failure from one
# IP, and login_trusted_networks does not lift it): auth cannot reach the penalty socket (below)
auth_failure_delay = 0
imap_id_log = *
mail_max_userip_connections = 200
first_valid_uid = 1000
mail_location = maildir:{d}/mail/%d/%n/Maildir
mail_uid = {MAIL_UID}
mail_gid = {MAIL_UID}
mailbox_idle_check_interval = 1s

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}

# gateway: master user (mailbox*master, or SASL PLAIN with authzid = mailbox)
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {d}/master-users
  master = yes
  pass = yes
}}
# gateway: SASL EXTERNAL with a client certificate whose CN is the gateway's
passdb {{
  driver = static
  args = nopassword=y
  master = yes
  pass = yes
  mechanisms = external
  username_filter = {self.gateway_cn}
}}
# gateway: ES256 bearer JWTs signed by the companion, checked locally
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {d}/users/%Lu
  mechanisms = plain login external
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {d}/users/%Lu
}}
{self._push_notification_config()}"""

    def _push_notification_config(self) -> str:
        """The opt-in call-out on delivery (nothing by default)."""
        url = self.push_notification_url
        if url is None:
            return ""
        return f"""
# opt-in: call out on delivery (push_notification plugin, OX driver); the driver reads the
# per-mailbox METADATA key /private/vendor/vendor.dovecot/http-notify, kept in a file per user
mail_attribute_dict = file:%h/dovecot-attributes
protocol imap {{
  imap_metadata = yes
}}
protocol lmtp {{
  mail_plugins = $mail_plugins notify push_notification
}}
plugin {{
  push_notification_driver = ox:url={url} timeout_msecs=2000
}}
"""
