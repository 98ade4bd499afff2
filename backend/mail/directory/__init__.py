"""The directory of MSSanté mailboxes: find a professional or a structure to write to.

``Directory.search`` has two implementations: ``FhirDirectory`` (the Annuaire Santé FHIR API) and
``SandboxDirectory`` (a small fictitious directory for dev, the demo and tests). Neither ever
returns an entry or a mailbox on the liste rouge. ``create_directory`` picks one from settings.
"""

from backend.mail.directory.base import Directory
from backend.mail.directory.factory import create_directory
from backend.mail.directory.fhir_client import API_KEY_HEADER, FhirDirectory
from backend.mail.directory.models import (
    DirectoryEntry,
    DirectoryPage,
    EntryKind,
    MailboxEntry,
    MailboxType,
    SearchKind,
)
from backend.mail.directory.sandbox import SandboxDirectory

__all__ = [
    "API_KEY_HEADER",
    "Directory",
    "DirectoryEntry",
    "DirectoryPage",
    "EntryKind",
    "FhirDirectory",
    "MailboxEntry",
    "MailboxType",
    "SandboxDirectory",
    "SearchKind",
    "create_directory",
]
