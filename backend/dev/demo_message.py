"""The message the dev page's button drops into the professional's own mailbox (demo only).

A fixed French message from a fictitious laboratory, new ``Message-ID`` and ``Date`` each time, so
the demo can make the sandbox operator deliver real new mail (and the watcher raise a real push)
without a second phone. Fake people only.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from email.message import EmailMessage
from email.policy import SMTP
from typing import Final

DEMO_SENDER: Final = "resultats@labo-exemple.mssante.fr"
DEMO_SENDER_NAME: Final = "Laboratoire de biologie d'Exemple"
DEMO_SUBJECT: Final = "Compte rendu de biologie disponible – M. Jean EXEMPLE"  # noqa: RUF001 - French typography
DEMO_TEXT: Final = """Bonjour,

Le compte rendu de biologie de M. Jean EXEMPLE (patient fictif), prélevé ce matin, est disponible.
Hémoglobine 13,9 g/dL, plaquettes 245 G/L, créatinine 78 µmol/L : pas de valeur critique.

Ce message de démonstration a été déposé depuis la page « Notifications envoyées (démo) ». Le
téléphone reçoit une notification qui ne dit rien de son contenu, puis le récupère par l'API.

Cordialement,
Laboratoire de biologie d'Exemple
"""


def demo_message(*, to_address: str, to_name: str, now: dt.datetime | None = None) -> bytes:
    """The demo message addressed to one mailbox, as bytes with CRLF line ends (for LMTP)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = email.utils.formataddr((DEMO_SENDER_NAME, DEMO_SENDER))
    message["To"] = email.utils.formataddr((to_name, to_address))
    message["Subject"] = DEMO_SUBJECT
    message["Date"] = email.utils.format_datetime(now or dt.datetime.now(dt.UTC))
    message["Message-ID"] = email.utils.make_msgid(domain="labo-exemple.mssante.fr")
    message.set_content(DEMO_TEXT)
    return message.as_bytes()
