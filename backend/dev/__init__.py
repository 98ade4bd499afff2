"""Dev-only parts of the demo: the device simulator's push feed, the page of sent pushes, demo mail.

``create_app`` mounts them only when pushes go to the dev sink (``MSSC_PUSH_PROVIDERS=sink``, the
dev default; production refuses the sink), so a production server answers 404 for all of them.
"""

from __future__ import annotations
