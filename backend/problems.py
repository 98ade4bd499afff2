"""One place where errors become responses: problem+json (RFC 9457) with a stable ``code``.

Browsers asking for HTML outside ``/api`` get a French error page instead. Unexpected exceptions
are logged by type and route only (never the message, which might quote input) and answered 500
``internal_error`` without detail.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.response import Template

from contracts.errors import PROBLEM_MEDIA_TYPE, STATUS, TITLES, ErrorCode, Problem, problem_type
from core.errors import AuthError, DomainError
from core.logging import get_logger

log = get_logger("mssc.problems")

_HTTP_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.AUTH_REQUIRED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}

#: French titles for the HTML error page.
_FRENCH = {
    ErrorCode.LOGIN_REQUIRED: "Connexion requise",
    ErrorCode.RECENT_LOGIN_REQUIRED: "Reconnexion requise",
    ErrorCode.CSRF_FAILED: "Formulaire expiré",
    ErrorCode.NOT_FOUND: "Page introuvable",
    ErrorCode.NOT_TITULAIRE: "Réservé au titulaire",
    ErrorCode.PSC_ACR_TOO_LOW: "Niveau d'authentification insuffisant",
    ErrorCode.PSC_UNAVAILABLE: "Pro Santé Connect est indisponible",
    ErrorCode.ENROLMENT_EXPIRED: "QR code expiré",
    ErrorCode.DEVICE_LIMIT_REACHED: "Nombre maximal d'appareils atteint",
}


def _path(request: Request[Any, Any, Any]) -> str:
    """The decoded path from the scope. ``request.url`` is not used here: building it decodes the
    query string as UTF-8, so a query with other bytes made the error handler itself fail."""
    path = request.scope.get("path", "")
    return path if isinstance(path, str) else ""


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    if _path(request).startswith(("/api/", "/health", "/.well-known", "/psc-sandbox")):
        return False
    return "text/html" in request.headers.get("accept", "")


def problem_response(
    request: Request[Any, Any, Any], problem: Problem, headers: dict[str, str] | None = None
) -> Response[Any]:
    if _wants_html(request):
        code = ErrorCode(problem.code) if problem.code in ErrorCode.__members__.values() else None
        # Returned as a response, not rendered here: Litestar's exception middleware renders it (an
        # already rendered ``ASGIResponse`` has no ``to_asgi_response`` and crashed every HTML error).
        return Template(
            template_name="error.html",
            status_code=problem.status,
            headers=headers,
            context={"problem": problem, "title": _FRENCH.get(code, problem.title) if code else problem.title},
        )
    return Response(
        content=msgspec.json.encode(problem), status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _problem(code: ErrorCode, detail: str | None, request: Request[Any, Any, Any], **extra: Any) -> Problem:
    return Problem(
        type=problem_type(code),
        title=TITLES[code],
        status=STATUS[code],
        code=code.value,
        detail=detail,
        instance=_instance(request),
        **extra,
    )


def _instance(request: Request[Any, Any, Any]) -> str | None:
    """The matched route's template (``/api/v1/enrolments/{rdv_id}/claim``), never the raw path.

    The raw path is input (path parameters, unknown paths) and must not come back in an error body.
    Unmatched requests (404, 405) have no template and no ``instance``.
    """
    template = request.scope.get("path_template")
    return template if isinstance(template, str) and template else None


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers = dict(exc.headers)
    if isinstance(exc, AuthError) or (exc.status == 401 and _path(request).startswith("/api/")):
        headers.setdefault("WWW-Authenticate", f'DPoP error="{exc.code.value}", algs="ES256"')
    problem = _problem(exc.code, exc.detail, request, wipe=exc.wipe, retry_after=exc.retry_after)
    if exc.status >= 500:
        log.warning("service_problem", code=exc.code.value, route=_route(request))
    return problem_response(request, problem, headers)


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    # Litestar's ``extra`` names the failing fields; drop any echoed value.
    errors: list[dict[str, str]] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            errors.append({"key": str(item.get("key", "")), "message": _safe(str(item.get("message", "")))})
    return problem_response(
        request, _problem(ErrorCode.VALIDATION_FAILED, "the request is not valid", request, errors=errors or None)
    )


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code = _HTTP_CODES.get(
        exc.status_code, ErrorCode.BAD_REQUEST if exc.status_code < 500 else ErrorCode.INTERNAL_ERROR
    )
    if isinstance(exc, NotFoundException):
        code = ErrorCode.NOT_FOUND
    if isinstance(exc, MethodNotAllowedException):
        code = ErrorCode.METHOD_NOT_ALLOWED
    if code == ErrorCode.INTERNAL_ERROR:
        log.error("http_error", status=exc.status_code, route=_route(request))
        return problem_response(request, _problem(code, None, request))
    # 404/405 texts may name the path (the static files router says which file it did not find).
    generic = exc.status_code >= 500 or code in (ErrorCode.NOT_FOUND, ErrorCode.METHOD_NOT_ALLOWED)
    problem = _problem(code, None if generic else _safe(exc.detail), request)
    return problem_response(request, problem, dict(exc.headers or {}))


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled_error", error_type=type(exc).__name__, route=_route(request))
    return problem_response(request, _problem(ErrorCode.INTERNAL_ERROR, None, request))


def _route(request: Request[Any, Any, Any]) -> str:
    handler = request.scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    return next(iter(paths)) if paths else "?"


#: msgspec messages that name the submitted value itself (an unknown key, an enum or literal value).
_ECHOING = ("Object contains unknown field", "Invalid enum value", "Invalid value")
#: A quoted value in a framework message (one-character ones are parser punctuation: ``expected ','``).
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _unquote_values(match: re.Match[str]) -> str:
    return match.group(0) if len(match.group(0)) <= 3 else "…"


def _safe(text: str) -> str:
    """Framework messages may quote the input; keep them short and free of echoed values."""
    text = text.split(" - ", 1)[0]
    for prefix in _ECHOING:
        if text.startswith(prefix):
            return prefix
    return _QUOTED.sub(_unquote_values, text)[:200]


exception_handlers: dict[Any, Any] = {
    DomainError: domain_error_handler,
    ValidationException: validation_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}

__all__ = ["MediaType", "exception_handlers", "problem_response"]
