"""FCM v1 through firebase-admin against the local HTTP peer: bearer, message shape, errors, limits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from contracts.push import AlertClass
from push.delivery import RetryPolicy, deliver_with_retries
from push.payload import CLASS_POLICY
from push.providers.base import SendReport
from tests.peers import fcm as peer_replies
from tests.peers.fcm import FcmPeer, FcmReply, ServiceAccount, make_service_account
from tests.peers.ports import closed_port
from tests.push.conftest import FakeTime, FcmFactory, fcm_token, notification


async def test_a_mail_push_reaches_the_peer_with_a_valid_bearer_and_message(
    fcm_factory: FcmFactory, fcm_peer: FcmPeer, fcm_service_account: ServiceAccount
) -> None:
    push = notification(fcm_token(), AlertClass.MAIL, badge=2, provider="fcm")
    report = await fcm_factory().send([push])

    assert report == SendReport(accepted=[push.push_id])
    (record,) = fcm_peer.records
    assert record.status == 200
    assert record.path == f"/v1/projects/{fcm_service_account.project_id}/messages:send"
    assert record.claims is not None and record.claims["iss"] == fcm_service_account.info["client_email"]
    message = record.message
    assert message is not None
    ttl = int(message["android"].pop("ttl").removesuffix("s"))
    assert CLASS_POLICY[AlertClass.MAIL].ttl_s - 5 <= ttl <= CLASS_POLICY[AlertClass.MAIL].ttl_s
    assert message == {
        "fid": push.token,
        "data": {
            "alertClass": "mail",
            "eventId": push.payload.event_id,
            "mailboxId": push.payload.mailbox_id,
            "badge": "2",
            "locKey": "MSSC_NEW_MESSAGE",
        },
        "android": {
            "priority": "high",
            "collapse_key": push.payload.mailbox_id,
            "notification": {
                "title_loc_key": "MSSC_NEW_MESSAGE",
                "channel_id": "mssc_mail",
                "tag": push.payload.mailbox_id,
                "notification_count": 2,
                "default_sound": True,
            },
        },
    }


async def test_a_wipe_is_data_only(fcm_factory: FcmFactory, fcm_peer: FcmPeer) -> None:
    push = notification(fcm_token(), AlertClass.WIPE, provider="fcm")
    assert (await fcm_factory().send([push])).accepted == [push.push_id]
    (record,) = fcm_peer.records
    assert record.message is not None
    android = record.message["android"]
    assert "notification" not in android and "collapse_key" not in android and "notification" not in record.message
    assert android["priority"] == "high"
    assert int(android["ttl"].removesuffix("s")) > 27 * 24 * 3600
    assert record.message["data"] == {"alertClass": "wipe", "eventId": push.payload.event_id}


@pytest.mark.parametrize(
    ("alert_class", "channel"), [(AlertClass.ONCALL_ALERT, "mssc_oncall"), (AlertClass.VISIT_ALERT, "mssc_visit")]
)
async def test_alerts_use_their_channel_and_ttl(
    fcm_factory: FcmFactory, fcm_peer: FcmPeer, alert_class: AlertClass, channel: str
) -> None:
    push = notification(fcm_token(), alert_class, provider="fcm")
    assert (await fcm_factory().send([push])).accepted == [push.push_id]
    (record,) = fcm_peer.records
    assert record.message is not None
    assert record.message["android"]["notification"]["channel_id"] == channel
    assert int(record.message["android"]["ttl"].removesuffix("s")) <= CLASS_POLICY[alert_class].ttl_s


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (peer_replies.UNREGISTERED, ("dead", "UNREGISTERED")),
        (peer_replies.INVALID_TOKEN, ("dead", "INVALID_ARGUMENT: token")),
        (peer_replies.SENDER_ID_MISMATCH, ("dead", "SENDER_ID_MISMATCH")),
        (peer_replies.QUOTA_EXCEEDED, ("retry", "QUOTA_EXCEEDED")),
        (peer_replies.UNAVAILABLE, ("retry", "UNAVAILABLE")),
        (FcmReply.error("INTERNAL"), ("retry", "INTERNAL")),
        (FcmReply.error("INVALID_ARGUMENT"), ("failed", "INVALID_ARGUMENT")),
    ],
)
async def test_every_fcm_error_is_mapped_to_dead_retry_or_permanent(
    fcm_factory: FcmFactory, fcm_peer: FcmPeer, reply: FcmReply, expected: tuple[str, str]
) -> None:
    push = notification(fcm_token(), provider="fcm")
    fcm_peer.script(push.token, reply)
    report = await fcm_factory().send([push])
    kind, reason = expected
    if kind == "dead":
        assert [(d.push_id, d.device_id, d.token, d.reason) for d in report.dead_tokens] == [
            (push.push_id, push.device_id, push.token, reason)
        ]
    elif kind == "retry":
        assert [(r.push_id, r.reason) for r in report.retry] == [(push.push_id, reason)]
    else:
        assert [(f.push_id, f.reason) for f in report.failed_permanently] == [(push.push_id, reason)]
    # firebase-admin's own retries are off: one answer, one request.
    assert len(fcm_peer.records) == 1


async def test_a_401_is_retried_with_a_fresh_bearer_then_permanent(fcm_factory: FcmFactory, fcm_peer: FcmPeer) -> None:
    # google-auth refreshes the bearer and resends twice on a 401 before giving the answer back.
    push = notification(fcm_token(), provider="fcm")
    fcm_peer.script(push.token, *[FcmReply.error("THIRD_PARTY_AUTH_ERROR")] * 3)
    report = await fcm_factory().send([push])
    assert [f.reason for f in report.failed_permanently] == ["THIRD_PARTY_AUTH_ERROR"]
    assert [r.status for r in fcm_peer.records] == [401, 401, 401]


async def test_retry_after_is_reported(fcm_factory: FcmFactory, fcm_peer: FcmPeer) -> None:
    push = notification(fcm_token(), provider="fcm")
    fcm_peer.script(push.token, FcmReply.error("QUOTA_EXCEEDED", retry_after="12"))
    report = await fcm_factory().send([push])
    assert [(r.retry_after_s, r.reason) for r in report.retry] == [(12.0, "QUOTA_EXCEEDED")]


async def test_a_wrong_project_is_permanent_and_never_condemns_tokens(
    fcm_factory: FcmFactory, fcm_peer: FcmPeer
) -> None:
    report = await fcm_factory(project_id="another-project").send([notification(fcm_token(), provider="fcm")])
    assert [f.reason for f in report.failed_permanently] == ["NOT_FOUND"]
    assert not report.dead_tokens


async def test_a_bearer_from_another_key_is_refused(fcm_factory: FcmFactory, fcm_peer: FcmPeer, tmp_path: Path) -> None:
    stranger = make_service_account(tmp_path, project_id="mssc-test")
    report = await fcm_factory(stranger).send([notification(fcm_token(), provider="fcm")])
    assert [f.reason for f in report.failed_permanently] == ["UNAUTHENTICATED"]
    assert [r.status for r in fcm_peer.records] == [401, 401, 401]
    assert not report.dead_tokens


async def test_a_message_over_the_limit_is_refused_before_sending(fcm_factory: FcmFactory, fcm_peer: FcmPeer) -> None:
    big, small = notification(fcm_token(), provider="fcm"), notification(fcm_token(), AlertClass.WIPE, provider="fcm")
    report = await fcm_factory(max_payload_bytes=200).send([big, small])
    assert [(f.push_id, f.reason) for f in report.failed_permanently] == [(big.push_id, "refused: payload_too_large")]
    assert report.accepted == [small.push_id]
    assert [r.token for r in fcm_peer.records] == [small.token]


async def test_each_send_has_its_own_timeout(fcm_factory: FcmFactory, fcm_peer: FcmPeer) -> None:
    stuck, fine = notification(fcm_token(), provider="fcm"), notification(fcm_token(), provider="fcm")
    fcm_peer.script(stuck.token, FcmReply.never())
    started = time.monotonic()
    report = await fcm_factory(send_timeout_s=0.4).send([stuck, fine])
    assert [(r.push_id, r.reason) for r in report.retry] == [(stuck.push_id, "timeout")]
    assert report.accepted == [fine.push_id]
    assert 0.4 <= time.monotonic() - started < 1.5


async def test_an_unreachable_fcm_is_a_temporary_failure(fcm_factory: FcmFactory) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/projects/{{project_id}}/messages:send"
    report = await fcm_factory(url=url).send([notification(fcm_token(), provider="fcm")])
    assert [r.reason for r in report.retry] == ["transport: UNAVAILABLE"]


async def test_concurrency_is_bounded(fcm_factory: FcmFactory, fcm_peer: FcmPeer) -> None:
    fcm_peer.default_delay_s = 0.1
    pushes = [notification(fcm_token(), provider="fcm") for _ in range(12)]
    started = time.monotonic()
    report = await fcm_factory(concurrency=3).send(pushes)
    assert len(report.accepted) == 12
    assert fcm_peer.max_in_flight == 3
    assert time.monotonic() - started >= 0.4


async def test_retry_after_is_honoured_and_the_push_delivered(
    fcm_factory: FcmFactory, fcm_peer: FcmPeer, fake_time: FakeTime
) -> None:
    push = notification(fcm_token(), provider="fcm")
    fcm_peer.script(push.token, FcmReply.error("QUOTA_EXCEEDED", retry_after="3"), peer_replies.UNAVAILABLE)
    result = await deliver_with_retries(
        fcm_factory(),
        [push],
        policy=RetryPolicy(max_tries=4, base_delay_s=0.1, max_delay_s=10),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    assert result.accepted == [push.push_id]
    assert fake_time.sleeps[0] >= 3.0  # never sooner than FCM asked
    assert fake_time.sleeps[1] >= 1.0  # UNAVAILABLE said Retry-After: 1
    assert [r.status for r in fcm_peer.records] == [429, 503, 200]
