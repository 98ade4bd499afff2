"""A private Dovecot for the demo: IMAP and LMTP on loopback, a master user, one mailbox per sandbox address.

Everything lives under one directory (config, passwd-files, maildirs, ``base_dir``, ``state_dir``,
log). Dovecot's unprivileged processes (``dovecot``, ``dovenull``) must reach it when we run as
root, so :func:`choose_root` only picks a directory whose every parent others may traverse.
Run as another user, Dovecot runs every process as that user (no ``chroot``, no uid changes) and the
data directory is always fine.

The gateway logs in as ``mailbox*master`` or with SASL PLAIN ``authzid=mailbox``; the mailboxes
have random passwords of their own, written nowhere else (nobody needs them). Folders: INBOX and the
special-use ``Sent``, ``Drafts``, ``Trash``, ``Junk``. Dovecot 2.3 offers CONDSTORE and QRESYNC by
itself. No TLS: loopback only (``tls = plain`` is refused in production by the settings).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from backend.mail.sandbox_operator.net import accepts, free_port, wait_refused

#: Owner of the maildirs when Dovecot runs as root (any unused uid ≥ ``first_valid_uid`` works).
MAIL_UID = 5000
DOVECOT_PATHS = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


class SandboxOperatorError(RuntimeError):
    """The sandbox operator could not start, stop or deliver. The message carries no mail content."""


class SandboxOperatorUnavailable(SandboxOperatorError):  # noqa: N818 - a reason, not a failure
    """Dovecot is not installed: the demo runs without mail."""


def dovecot_binary() -> str | None:
    """Dovecot's master binary, if installed (``/usr/sbin`` is often not on a user's ``PATH``)."""
    found = shutil.which("dovecot")
    if found:
        return found
    return next((path for path in DOVECOT_PATHS if os.access(path, os.X_OK)), None)


def _others_may_traverse(path: Path) -> bool:
    """True when every directory from ``/`` to ``path`` lets other users in (``o+x``)."""
    current = path.resolve()
    for directory in (current, *current.parents):
        try:
            mode = directory.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


def choose_root(data_dir: Path) -> tuple[Path, bool]:
    """Where the operator keeps its tree, and whether that place is temporary (removed at stop).

    ``<data_dir>/sandbox-operator`` when Dovecot's users can reach it, so the demo's mail outlives a
    restart; else a fresh ``/tmp`` directory with mode 0755, removed when the operator stops (the
    next start seeds a new one).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or _others_may_traverse(data_dir):
        return data_dir.resolve() / "sandbox-operator", False
    root = Path(tempfile.mkdtemp(prefix="mssc-sandbox-operator-", dir="/tmp"))
    root.chmod(0o755)
    return root, True


class DovecotServer:
    """One ``dovecot -F`` process with its own config; ``start()``, ``stop()``."""

    def __init__(
        self,
        root: Path,
        *,
        binary: str,
        host: str,
        imap_port: int,
        master_user: str,
        master_password: str,
        addresses: Sequence[str],
    ) -> None:
        self.root = root
        self.binary = binary
        self.host = host
        self.imap_port = imap_port
        self.lmtp_port = 0
        self.master_user = master_user
        self._master_password = master_password
        self.addresses = tuple(sorted({a.lower() for a in addresses}))
        self._process: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0

    # --- paths ---------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, *, timeout_s: float = 15.0) -> None:
        """Write the tree and config, start Dovecot, wait until IMAP and LMTP listen."""
        if self.running:
            return
        self._prepare_tree()
        self._stop_stale()
        self.lmtp_port = free_port(self.host)
        while self.lmtp_port == self.imap_port:
            self.lmtp_port = free_port(self.host)
        self.config_file.write_text(self._config())
        self.config_file.chmod(0o644)
        with (self.root / "dovecot.stderr").open("wb") as stderr:
            self._process = subprocess.Popen(  # noqa: S603 - our binary, our config, no shell
                [self.binary, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        for port in (self.imap_port, self.lmtp_port):
            while not accepts(self.host, port, timeout_s=0.2):
                if self._process.poll() is not None:
                    code = self._process.returncode
                    self._process = None
                    raise SandboxOperatorError(f"dovecot exited with status {code}: see {self.log_file}")
                if time.monotonic() >= deadline:
                    self.stop()
                    raise SandboxOperatorError(f"dovecot did not listen within {timeout_s:.0f} s: see {self.log_file}")
                time.sleep(0.02)

    def stop(self, *, grace_s: float = 0.3, timeout_s: float = 10.0) -> None:
        """SIGTERM the master, give it ``grace_s``, SIGKILL its process group, wait for the ports to close.

        Dovecot's client processes (imap, lmtp) share the master's process group and may outlive
        it; they go too, so no connection keeps being served by a stopped operator.
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
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
        for port in (self.imap_port, self.lmtp_port):
            if port:
                wait_refused(self.host, port, timeout_s=3.0)

    def _stop_stale(self) -> None:
        """A demo killed hard leaves its Dovecot running (own session): stop it before starting again."""
        pid_file = self.root / "run" / "master.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.config_file).encode() not in cmdline:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        pid_file.unlink(missing_ok=True)

    # --- files ---------------------------------------------------------------------------------
    def _mail_owner(self) -> tuple[int, int]:
        return (MAIL_UID, MAIL_UID) if self._as_root else (os.getuid(), os.getgid())

    def home(self, address: str) -> Path:
        local, _, domain = address.partition("@")
        return self.root / "mail" / domain / local

    def stored_messages(self, address: str) -> int:
        """Messages in every folder of a mailbox, counted on disk (Maildir++: ``cur``, ``new``, ``.Folder``)."""
        maildir = self.home(address.lower()) / "Maildir"
        if not maildir.is_dir():
            return 0
        folders = [maildir, *(p for p in maildir.iterdir() if p.name.startswith(".") and p.is_dir())]
        return sum(
            sum(1 for _ in (folder / sub).iterdir())
            for folder in folders
            for sub in ("cur", "new")
            if (folder / sub).is_dir()
        )

    def _prepare_tree(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(0o755)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        uid, gid = self._mail_owner()
        if self._as_root:
            os.chown(mail, uid, gid)
        mail.chmod(0o700)
        self._write_secret_file("master-users", f"{self.master_user}:{{PLAIN}}{self._master_password}\n")
        lines = [
            f"{address}:{{PLAIN}}{secrets.token_hex(16)}:{uid}:{gid}::{self.home(address)}::\n"
            for address in self.addresses
        ]
        self._write_secret_file("users", "".join(lines))

    def _write_secret_file(self, name: str, text: str) -> None:
        """Readable by Dovecot's auth process (group ``dovecot`` when root), by nobody else."""
        path = self.root / name
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(text)
        mode = 0o600
        if self._as_root:
            try:
                os.chown(tmp, 0, grp.getgrnam("dovecot").gr_gid)
                mode = 0o640
            except KeyError:
                mode = 0o644
        tmp.chmod(mode)
        tmp.replace(path)

    def _unprivileged(self) -> str:
        """Settings that let Dovecot run entirely as the current (non-root) user."""
        if self._as_root:
            return f"first_valid_uid = {MAIL_UID}\nmail_uid = {MAIL_UID}\nmail_gid = {MAIL_UID}\n"
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        return (
            f"default_login_user = {user}\n"
            f"default_internal_user = {user}\n"
            f"default_internal_group = {group}\n"
            f"first_valid_uid = {min(os.getuid(), 500) or 1}\n"
            f"first_valid_gid = {min(os.getgid(), 500) or 1}\n"
            f"mail_uid = {os.getuid()}\n"
            f"mail_gid = {os.getgid()}\n"
            "service anvil {\n  chroot =\n}\n"
        )

    def _config(self) -> str:
        d = self.root
        login_chroot = "" if self._as_root else "  chroot =\n"
        return f"""# generated by backend/mail/sandbox_operator (the demo's local MSSanté operator): do not edit
instance_name = mssc-sandbox-{self.imap_port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
debug_log_path = {d}/dovecot.log
protocols = imap lmtp
listen = {self.host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
auth_master_user_separator = *
# the acting professional the gateway announces in ID shows in dovecot.log
imap_id_log = *
mail_max_userip_connections = 100
mail_location = maildir:{d}/mail/%d/%n/Maildir
mailbox_idle_check_interval = 1s
{self._unprivileged()}
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
{login_chroot}  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}

# the gateway: master user (mailbox*master, or SASL PLAIN with authzid = mailbox)
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {d}/master-users
  master = yes
  pass = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {d}/users
}}
"""
