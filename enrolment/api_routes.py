"""Phone side of the enrolment (JSON). Every call carries a DPoP proof signed by the phone's key."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from contracts.enrolment import BindRequest, ClaimRequest, ClaimResponse, EnrolmentStatus, TokenResponse
from contracts.errors import ErrorCode
from core.errors import NotFoundError
from core.phone_key import PhoneKey
from enrolment.enrolment_service import EnrolmentService
from enrolment.rendezvous import refuse_finished

RendezvousId = Annotated[
    str,
    PathParameter(
        min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="Rendezvous id from the QR code path"
    ),
]


@post("/{rdv_id:str}/claim", status_code=200, summary="Claim a QR rendezvous with the phone's fresh key")
async def claim(
    request: Request[Any, Any, Any],
    rdv_id: RendezvousId,
    data: JSONBody[ClaimRequest],
    phone_key: NamedDependency[PhoneKey],
    enrolment: NamedDependency[EnrolmentService],
) -> ClaimResponse:
    client = request.client.host if request.client else "unknown"
    return await enrolment.claim(rdv_id, data, phone_key, client_ip=client)


@post("/{rdv_id:str}/bind", status_code=200, summary="Prove the key: WebAuthn registration or ES256 signature")
async def bind(
    rdv_id: RendezvousId,
    data: JSONBody[BindRequest],
    phone_key: NamedDependency[PhoneKey],
    enrolment: NamedDependency[EnrolmentService],
) -> EnrolmentStatus:
    return await enrolment.bind(rdv_id, data, phone_key)


@post(
    "/{rdv_id:str}/complete",
    status_code=200,
    summary="Get the first tokens once the person confirmed the check code on the web",
)
async def complete(
    rdv_id: RendezvousId, phone_key: NamedDependency[PhoneKey], enrolment: NamedDependency[EnrolmentService]
) -> TokenResponse:
    return await enrolment.complete(rdv_id, phone_key)


@get("/{rdv_id:str}", summary="Where the enrolment stands (for the claiming phone only)")
async def status(
    rdv_id: RendezvousId, phone_key: NamedDependency[PhoneKey], enrolment: NamedDependency[EnrolmentService]
) -> EnrolmentStatus:
    rdv, _ = await enrolment.store.load(rdv_id)
    if rdv.jkt != phone_key.jkt:
        refuse_finished(rdv)
        raise NotFoundError(ErrorCode.ENROLMENT_NOT_FOUND, "not claimed with this key")
    return EnrolmentStatus(state=rdv.state, expires_in=rdv.expires_in())


enrolment_api_router = Router(
    path="/api/v1/enrolments", route_handlers=[claim, bind, complete, status], tags=["enrolment"]
)
