"""PSC sandbox: a dev identity provider speaking Pro Santé Connect's OIDC, with test professionals.

Dev only. ``create_psc_sandbox_router`` gives a Litestar router to mount at ``/psc-sandbox``;
``PROFESSIONALS`` and ``STRUCTURES`` are the people and places one can log in as (the demo seeds
mailboxes from them).
"""

from enrolment.psc_sandbox.people import (
    PHARMACIE_DES_TILLEULS,
    PROFESSIONALS,
    STRUCTURES,
    SandboxActivity,
    SandboxProfessional,
    SandboxStructure,
    find_professional,
)
from enrolment.psc_sandbox.provider import AUTH_MODES, SandboxProvider
from enrolment.psc_sandbox.router import create_psc_sandbox_router

__all__ = [
    "AUTH_MODES",
    "PHARMACIE_DES_TILLEULS",
    "PROFESSIONALS",
    "STRUCTURES",
    "SandboxActivity",
    "SandboxProfessional",
    "SandboxProvider",
    "SandboxStructure",
    "create_psc_sandbox_router",
    "find_professional",
]
