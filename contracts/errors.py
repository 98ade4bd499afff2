"""Stable error codes and the problem+json (RFC 9457) body every error is answered with.

Codes are part of the wire: phones switch on ``code``, never on ``title`` or ``detail``. Add codes,
never rename them. ``detail`` texts never carry message content, addresses or patient data.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ErrorCode(StrEnum):
    # generic
    BAD_REQUEST = "bad_request"
    VALIDATION_FAILED = "validation_failed"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_ERROR = "internal_error"
    # phone authentication (device-bound tokens, DPoP)
    AUTH_REQUIRED = "auth_required"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_STALE = "token_stale"
    DPOP_REQUIRED = "dpop_required"
    DPOP_INVALID = "dpop_invalid"
    DPOP_REPLAYED = "dpop_replayed"
    USE_DPOP_NONCE = "use_dpop_nonce"
    DEVICE_REVOKED = "device_revoked"
    DEVICE_EXPIRED = "device_expired"
    INVALID_GRANT = "invalid_grant"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    FORBIDDEN = "forbidden"
    # web session and Pro Santé Connect
    LOGIN_REQUIRED = "login_required"
    RECENT_LOGIN_REQUIRED = "recent_login_required"
    CSRF_FAILED = "csrf_failed"
    PSC_ERROR = "psc_error"
    PSC_STATE_MISMATCH = "psc_state_mismatch"
    PSC_NONCE_MISMATCH = "psc_nonce_mismatch"
    PSC_INVALID_TOKEN = "psc_invalid_token"
    PSC_ACR_TOO_LOW = "psc_acr_too_low"
    PSC_UNAVAILABLE = "psc_unavailable"
    NO_ACTIVITY = "no_activity"
    # enrolment
    ENROLMENT_NOT_FOUND = "enrolment_not_found"
    ENROLMENT_EXPIRED = "enrolment_expired"
    ENROLMENT_ALREADY_USED = "enrolment_already_used"
    ENROLMENT_BAD_SECRET = "enrolment_bad_secret"
    ENROLMENT_WRONG_STATE = "enrolment_wrong_state"
    ENROLMENT_REJECTED = "enrolment_rejected"
    ENROLMENT_PENDING = "enrolment_pending"
    DEVICE_LIMIT_REACHED = "device_limit_reached"
    BINDING_INVALID = "binding_invalid"
    ATTESTATION_REQUIRED = "attestation_required"
    # devices, teams
    DEVICE_NOT_FOUND = "device_not_found"
    NOT_TITULAIRE = "not_titulaire"
    MEMBER_NOT_FOUND = "member_not_found"
    STRUCTURE_NOT_FOUND = "structure_not_found"
    MAILBOX_NOT_FOUND = "mailbox_not_found"
    PROFESSIONAL_NOT_FOUND = "professional_not_found"
    ALREADY_MEMBER = "already_member"
    # MSSanté operator (IMAP / SMTP submission)
    OPERATOR_UNAVAILABLE = "operator_unavailable"
    OPERATOR_AUTH_FAILED = "operator_auth_failed"
    OPERATOR_BUSY = "operator_busy"
    OPERATOR_ERROR = "operator_error"
    FOLDER_NOT_FOUND = "folder_not_found"
    MESSAGE_NOT_FOUND = "message_not_found"
    INVALID_CURSOR = "invalid_cursor"
    #: The sync state is unknown or from another UIDVALIDITY: the phone resynchronises the folder.
    INVALID_STATE = "sync_state_invalid"
    MAILBOX_FORBIDDEN = "mailbox_forbidden"
    MESSAGE_REJECTED = "message_rejected"
    # trust space and directory
    RECIPIENT_NOT_TRUSTED = "recipient_not_trusted"
    TRUST_SPACE_UNAVAILABLE = "trust_space_unavailable"
    DIRECTORY_UNAVAILABLE = "directory_unavailable"
    INVALID_PAGE_TOKEN = "invalid_page_token"
    # mail content (backend.mail.mime)
    MDN_NOT_REQUESTED = "mdn_not_requested"
    XDM_METADATA_REQUIRED = "xdm_metadata_required"
    # availability, on-call rota, alerts, service clients
    ALERT_NOT_FOUND = "alert_not_found"
    #: Someone else already took the alert, or it was closed: nothing left to acknowledge.
    ALERT_NOT_OPEN = "alert_not_open"
    #: Nobody to notify: no colleague of the team is on visit (or the target is not a member).
    ALERT_NO_RECIPIENT = "alert_no_recipient"
    #: The alert's text no longer decrypts (the server's secret key changed): it is gone for good.
    ALERT_TEXT_UNREADABLE = "alert_text_unreadable"
    #: The device acts for no structure: structure-scoped calls (alerts, rota) need one.
    STRUCTURE_REQUIRED = "structure_required"
    SHIFT_NOT_FOUND = "shift_not_found"
    SERVICE_CLIENT_NOT_FOUND = "service_client_not_found"
    #: The service API key is missing, malformed, unknown or revoked.
    INVALID_SERVICE_KEY = "invalid_service_key"


#: HTTP status for each code. One table, so a code always comes with the same status.
STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.VALIDATION_FAILED: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.AUTH_REQUIRED: 401,
    ErrorCode.INVALID_TOKEN: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.TOKEN_STALE: 401,
    ErrorCode.DPOP_REQUIRED: 401,
    ErrorCode.DPOP_INVALID: 401,
    ErrorCode.DPOP_REPLAYED: 401,
    ErrorCode.USE_DPOP_NONCE: 401,
    ErrorCode.DEVICE_REVOKED: 401,
    ErrorCode.DEVICE_EXPIRED: 401,
    ErrorCode.INVALID_GRANT: 400,
    ErrorCode.REFRESH_TOKEN_REUSED: 400,
    ErrorCode.INSUFFICIENT_SCOPE: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.LOGIN_REQUIRED: 401,
    ErrorCode.RECENT_LOGIN_REQUIRED: 401,
    ErrorCode.CSRF_FAILED: 403,
    ErrorCode.PSC_ERROR: 400,
    ErrorCode.PSC_STATE_MISMATCH: 400,
    ErrorCode.PSC_NONCE_MISMATCH: 400,
    ErrorCode.PSC_INVALID_TOKEN: 400,
    ErrorCode.PSC_ACR_TOO_LOW: 403,
    ErrorCode.PSC_UNAVAILABLE: 503,
    ErrorCode.NO_ACTIVITY: 403,
    ErrorCode.ENROLMENT_NOT_FOUND: 404,
    ErrorCode.ENROLMENT_EXPIRED: 410,
    ErrorCode.ENROLMENT_ALREADY_USED: 409,
    ErrorCode.ENROLMENT_BAD_SECRET: 403,
    ErrorCode.ENROLMENT_WRONG_STATE: 409,
    ErrorCode.ENROLMENT_REJECTED: 410,
    ErrorCode.ENROLMENT_PENDING: 409,
    ErrorCode.DEVICE_LIMIT_REACHED: 409,
    ErrorCode.BINDING_INVALID: 400,
    ErrorCode.ATTESTATION_REQUIRED: 400,
    ErrorCode.DEVICE_NOT_FOUND: 404,
    ErrorCode.NOT_TITULAIRE: 403,
    ErrorCode.MEMBER_NOT_FOUND: 404,
    ErrorCode.STRUCTURE_NOT_FOUND: 404,
    ErrorCode.MAILBOX_NOT_FOUND: 404,
    ErrorCode.PROFESSIONAL_NOT_FOUND: 404,
    ErrorCode.ALREADY_MEMBER: 409,
    #: the operator is down, unreachable or timing out; ``Retry-After`` says when to come back
    ErrorCode.INVALID_CURSOR: 400,
    ErrorCode.INVALID_STATE: 410,
    ErrorCode.MAILBOX_FORBIDDEN: 403,
    ErrorCode.OPERATOR_UNAVAILABLE: 503,
    #: the operator refused the gateway's login (a configuration problem on our side or theirs)
    ErrorCode.OPERATOR_AUTH_FAILED: 502,
    #: every session of this mailbox for this device is busy; retry shortly
    ErrorCode.OPERATOR_BUSY: 503,
    #: the operator answered something we cannot use (unexpected NO/BAD, malformed response)
    ErrorCode.OPERATOR_ERROR: 502,
    ErrorCode.FOLDER_NOT_FOUND: 404,
    ErrorCode.MESSAGE_NOT_FOUND: 404,
    #: the operator refused the message or all of its recipients
    ErrorCode.MESSAGE_REJECTED: 422,
    ErrorCode.RECIPIENT_NOT_TRUSTED: 422,
    ErrorCode.TRUST_SPACE_UNAVAILABLE: 503,
    ErrorCode.DIRECTORY_UNAVAILABLE: 503,
    ErrorCode.INVALID_PAGE_TOKEN: 400,
    ErrorCode.MDN_NOT_REQUESTED: 409,
    ErrorCode.XDM_METADATA_REQUIRED: 400,
    ErrorCode.ALERT_NOT_FOUND: 404,
    ErrorCode.ALERT_NOT_OPEN: 409,
    ErrorCode.ALERT_NO_RECIPIENT: 409,
    ErrorCode.ALERT_TEXT_UNREADABLE: 410,
    ErrorCode.STRUCTURE_REQUIRED: 403,
    ErrorCode.SHIFT_NOT_FOUND: 404,
    ErrorCode.SERVICE_CLIENT_NOT_FOUND: 404,
    ErrorCode.INVALID_SERVICE_KEY: 401,
}


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, plus our stable ``code`` and a few typed extensions."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    #: Set on ``device_revoked``: the phone must erase its keys and cached data.
    wipe: bool | None = None
    #: Seconds to wait before retrying (also sent as ``Retry-After``).
    retry_after: int | None = msgspec.field(default=None, name="retryAfter")
    #: Field-level validation messages (never echo the submitted values).
    errors: list[dict[str, str]] | None = None


def problem_type(code: ErrorCode | str) -> str:
    """The ``type`` URI of a code: stable, documented at that path of the service."""
    return f"/problems/{code}"


TITLES: dict[ErrorCode, str] = {code: code.value.replace("_", " ").capitalize() for code in ErrorCode}
