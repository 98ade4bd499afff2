"""The push room: wake phones within seconds without Apple or Google learning anything.

* :mod:`push.payload` — the content-free composer (``mail_payload``, ``alert_payload``,
  ``wipe_payload``, ``payload_for_event``) over the allow-list in :mod:`contracts.push`, the class
  policy (urgency, expiry, interruption level) and ``build_notification``.
* :mod:`push.providers` — one interface (``PushProvider.send`` → ``SendReport``) and its providers:
  APNs (aioapns), FCM (firebase-admin), the dev sink; ``factory.providers_from_settings``.
* :mod:`push.delivery` — ``deliver_with_retries``: backoff with jitter, ``Retry-After``, bounded tries.
* :mod:`push.settings_check` — the provider configuration, checked at start-up.
"""
