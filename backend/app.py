"""The app factory: one Litestar app with the web pages, the phone API and (later) the workers.

Settings are read here, when the app is created, never at import time. Services are built at
start-up (they need the event loop) into one ``Container`` kept on ``app.state``; route handlers
receive them by name through dependency injection.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar, Request, get
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from backend.alerts.routes import alerts_api_router, service_api_router
from backend.api_routes import device_api_router, jwks
from backend.container import Container, build_container
from backend.device_auth import AuthenticatedDevice
from backend.health import health_router, metrics
from backend.http_headers import headers_before_send
from backend.mail.routes import mail_router
from backend.mail.webhook import operator_new_mail
from backend.problems import exception_handlers
from contracts.errors import STATUS, ErrorCode
from core.logging import configure_logging, get_logger
from core.phone_key import PhoneKey
from core.settings import Settings
from enrolment.api_routes import enrolment_api_router
from enrolment.web.device_routes import device_router
from enrolment.web.enrol_routes import enrol_router
from enrolment.web.login_routes import login_router
from enrolment.web.rota_routes import rota_router
from enrolment.web.team_routes import team_router

log = get_logger("mssc.app")

WEB = Path(__file__).resolve().parent.parent / "enrolment" / "web"
API_VERSION = "1.0.0"

#: Services handed to route handlers by parameter name.
SERVICES = (
    "settings",
    "db",
    "audit",
    "sessions",
    "enrolment",
    "teams",
    "identity",
    "devices",
    "device_tokens",
    "authenticator",
    "signing_keys",
    "psc",
    "mail",
    "directory",
    "availability",
    "rota",
    "alerts",
    "service_clients",
    "watcher",
)


class AppRequest(Request[Any, Any, Any]):
    """msgspec raises ``UnicodeDecodeError`` (bytes that are not UTF-8 in a string) and
    ``RecursionError`` (nesting too deep), which Litestar does not turn into a 400."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except (UnicodeDecodeError, RecursionError):
            raise ClientException("JSON is malformed") from None


def _no_nul(connection: Any, _: Any) -> None:
    """``os.stat`` refuses a path with a NUL byte (``ValueError``): such a file does not exist."""
    if "\x00" in connection.scope["path"]:
        raise NotFoundException()


def _service(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state.container, name)

    return Provide(provide, sync_to_thread=False)


async def _phone_key(request: Request[Any, Any, Any], state: State) -> PhoneKey:
    key: PhoneKey = await state.container.authenticator.proof(request)
    return key


async def _device(request: Request[Any, Any, Any], state: State) -> AuthenticatedDevice:
    device: AuthenticatedDevice = await state.container.authenticator.authenticate(request)
    return device


@get("/problems/{code:str}", include_in_schema=False)
async def problem_doc(code: FromPath[str]) -> Template:
    """The page each problem ``type`` points to."""
    known = code in {c.value for c in ErrorCode}
    return Template(
        template_name="problems.html",
        context={
            "web": None,
            "code": code if known else None,
            "status": STATUS[ErrorCode(code)] if known else None,
            "codes": sorted((c.value, STATUS[c]) for c in ErrorCode),
        },
    )


def _operator_label(settings: Settings, sandbox_running: bool) -> str:
    if settings.operator.kind != "sandbox":
        return f"{settings.operator.imap_host}:{settings.operator.imap_port}"
    return "sandbox" if sandbox_running else "none (no mail)"


async def _stop_sandbox_operator(app: Litestar) -> None:
    sandbox = getattr(app.state, "sandbox_operator", None)
    app.state.sandbox_operator = None
    if sandbox is not None:
        await sandbox.astop()
        log.info("sandbox_operator.stopped")


def create_app(
    settings: Settings | None = None,
    *,
    psc_http: httpx.AsyncClient | None = None,
    sandbox_operator: bool | None = None,
) -> Litestar:
    """The app. ``sandbox_operator``: start the demo's local operator (Dovecot) at start-up; by default
    when the settings ask for it (dev, ``MSSC_OPERATOR_KIND=sandbox``)."""
    settings = settings or Settings.from_env()
    configure_logging(settings.app.log_level, json=settings.app.is_production)
    if sandbox_operator is None:
        sandbox_operator = settings.operator.kind == "sandbox" and not settings.app.is_production

    async def start(app: Litestar) -> None:
        run_settings = settings
        app.state.sandbox_operator = None
        if sandbox_operator:
            from backend.mail.sandbox_operator import start_sandbox_operator  # noqa: PLC0415 - dev only

            # before the services: the operator connector must use the ports the sandbox really got
            app.state.sandbox_operator, run_settings = await start_sandbox_operator(settings)
        try:
            container = await build_container(run_settings, psc_http=psc_http)
        except BaseException:
            await _stop_sandbox_operator(app)
            raise
        app.state.container = container
        await container.start()
        if settings.psc.sandbox:
            from enrolment.sandbox_seed import seed_sandbox  # noqa: PLC0415 - dev only

            await seed_sandbox(container.db)
        log.info(
            "started",
            mode=settings.app.mode,
            db=container.db.dialect,
            store="redis" if settings.store.is_redis else "memory",
            operator=_operator_label(run_settings, app.state.sandbox_operator is not None),
        )

    async def stop(app: Litestar) -> None:
        container: Container | None = getattr(app.state, "container", None)
        if container is not None:
            await container.close()
        await _stop_sandbox_operator(app)

    handlers: list[Any] = [
        health_router,
        metrics,
        device_api_router,
        mail_router,
        alerts_api_router,
        service_api_router,
        enrolment_api_router,
        jwks,
        login_router,
        enrol_router,
        device_router,
        team_router,
        rota_router,
        operator_new_mail,
        problem_doc,
        create_static_files_router(
            path="/static", directories=[WEB / "static"], include_in_schema=False, guards=[_no_nul]
        ),
    ]
    template_dirs: list[Path | PathLike[Any] | str] = [WEB / "templates"]
    if "sink" in settings.push.providers and not settings.app.is_production:
        from backend.dev.routes import dev_api_router, dev_web_router  # noqa: PLC0415 - dev only

        handlers += [dev_api_router, dev_web_router]
    if settings.psc.sandbox:
        from enrolment.psc_sandbox.router import create_psc_sandbox_router  # noqa: PLC0415 - dev only

        handlers.append(
            create_psc_sandbox_router(
                issuer=settings.psc.issuer,
                client_id=settings.psc.client_id,
                client_secret=settings.psc.client_secret,
                redirect_uris=(f"{settings.app.public_url.rstrip('/')}/auth/psc/callback",),
            )
        )

    dependencies = {name: _service(name) for name in SERVICES}
    dependencies["phone_key"] = Provide(_phone_key)
    dependencies["device"] = Provide(_device)
    return Litestar(
        route_handlers=handlers,
        on_startup=[start],
        on_shutdown=[stop],
        dependencies=dependencies,
        exception_handlers=exception_handlers,
        before_send=[headers_before_send],
        template_config=TemplateConfig(directory=template_dirs, engine=JinjaTemplateEngine),
        compression_config=CompressionConfig(backend="gzip", minimum_size=2048),
        request_max_body_size=256 * 1024,
        openapi_config=OpenAPIConfig(
            title="mss-companion phone API",
            version=API_VERSION,
            path="/schema",
            description="Device enrolment and device-bound (DPoP) API of mss-companion.",
            components=Components(
                security_schemes={
                    "DPoP": SecurityScheme(
                        type="http",
                        scheme="DPoP",
                        description="Access token bound to the device key (RFC 9449); "
                        "send a DPoP proof header with every call.",
                    ),
                    "ServiceKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="A service client's API key (mssc_sk_…), created by the titulaire; "
                        "only for POST /api/v1/service/alerts.",
                    ),
                }
            ),
            security=[{"DPoP": []}],
        ),
        debug=False,
        request_class=AppRequest,
    )


def app_from_env() -> Litestar:
    """Entry point for ``uvicorn --factory backend.app:app_from_env``."""
    return create_app()
