"""APNs through aioapns against the local HTTP/2 peer: headers, ES256 token, JSON, errors, limits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt
import pytest

from contracts.push import AlertClass, LocKey, PushPayload
from push.delivery import RetryPolicy, deliver_with_retries
from push.payload import CLASS_POLICY
from push.providers.apns import ApnsProvider
from push.providers.base import PushKind, PushNotification, PushPriority, SendReport
from tests.peers import apns as peer_replies
from tests.peers.apns import ApnsCredentials, ApnsPeer, ApnsReply, make_apns_credentials
from tests.peers.ports import closed_port
from tests.push.conftest import ApnsFactory, FakeTime, apns_token, notification


async def test_an_alert_reaches_the_peer_with_apple_headers_body_and_es256_token(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, apns_credentials: ApnsCredentials
) -> None:
    push = notification(apns_token(), AlertClass.MAIL, badge=4)
    report = await apns_factory().send([push])

    assert report == SendReport(accepted=[push.push_id])
    (record,) = apns_peer.records
    assert record.status == 200
    headers = record.headers
    assert headers[":path"] == f"/3/device/{push.token}"
    assert headers["apns-id"] == push.push_id
    assert headers["apns-topic"] == apns_credentials.topic
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-collapse-id"] == push.payload.mailbox_id
    assert abs(int(headers["apns-expiration"]) - push.expires_at) <= 2
    token = headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": apns_credentials.key_id, "typ": "JWT"}
    assert record.claims is not None and record.claims["iss"] == apns_credentials.team_id
    assert record.json == {
        "aps": {
            "alert": {"loc-key": "MSSC_NEW_MESSAGE"},
            "sound": "default",
            "interruption-level": "active",
            "badge": 4,
        },
        "mssc": {
            "alertClass": "mail",
            "eventId": push.payload.event_id,
            "mailboxId": push.payload.mailbox_id,
            "badge": 4,
            "locKey": "MSSC_NEW_MESSAGE",
        },
    }


@pytest.mark.parametrize(
    ("alert_class", "level", "loc_key"),
    [
        (AlertClass.ONCALL_ALERT, "time-sensitive", "MSSC_ONCALL_ALERT"),
        (AlertClass.VISIT_ALERT, "active", "MSSC_VISIT_ALERT"),
    ],
)
async def test_alerts_carry_their_generic_text_and_interruption_level(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, alert_class: AlertClass, level: str, loc_key: str
) -> None:
    push = notification(apns_token(), alert_class)
    assert (await apns_factory().send([push])).accepted == [push.push_id]
    (record,) = apns_peer.records
    assert record.json["aps"] == {"alert": {"loc-key": loc_key}, "sound": "default", "interruption-level": level}
    assert record.json["mssc"]["alertId"] == push.payload.alert_id
    assert record.headers["apns-collapse-id"] == push.payload.alert_id
    assert int(record.headers["apns-expiration"]) <= time.time() + CLASS_POLICY[alert_class].ttl_s + 1


async def test_a_wipe_is_a_silent_background_push_at_priority_5(apns_factory: ApnsFactory, apns_peer: ApnsPeer) -> None:
    push = notification(apns_token(), AlertClass.WIPE)
    assert push.kind is PushKind.BACKGROUND and push.priority is PushPriority.HIGH
    assert (await apns_factory().send([push])).accepted == [push.push_id]
    (record,) = apns_peer.records
    assert record.headers["apns-push-type"] == "background"
    assert record.headers["apns-priority"] == "5"  # Apple refuses 10 for background pushes
    assert "apns-collapse-id" not in record.headers
    assert record.json == {
        "aps": {"content-available": 1},
        "mssc": {"alertClass": "wipe", "eventId": push.payload.event_id},
    }


async def test_h2c_reaches_a_plaintext_peer(apns_credentials: ApnsCredentials) -> None:
    with ApnsPeer(apns_credentials) as peer:
        provider = ApnsProvider(
            key_pem=apns_credentials.key_pem,
            key_id=apns_credentials.key_id,
            team_id=apns_credentials.team_id,
            topic=apns_credentials.topic,
            server=peer.server,
            use_tls=False,
        )
        try:
            pushes = [notification(apns_token()) for _ in range(3)]
            report = await provider.send(pushes)
        finally:
            await provider.aclose()
        assert sorted(report.accepted) == sorted(p.push_id for p in pushes)
        assert len(peer.records) == 3


def test_h2c_is_never_used_towards_apple(apns_credentials: ApnsCredentials) -> None:
    with pytest.raises(ValueError, match="h2c"):
        ApnsProvider(key_pem="", key_id="K", team_id="T", topic="t.t", server="production", use_tls=False)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (peer_replies.BAD_DEVICE_TOKEN, ("dead", "BadDeviceToken")),
        (peer_replies.NOT_FOR_TOPIC, ("dead", "DeviceTokenNotForTopic")),
        (peer_replies.UNREGISTERED, ("dead", "Unregistered")),
        (peer_replies.TOO_MANY_REQUESTS, ("retry", "TooManyRequests")),
        (peer_replies.SERVICE_UNAVAILABLE, ("retry", "ServiceUnavailable")),
        (ApnsReply.error(500, "InternalServerError"), ("retry", "InternalServerError")),
        (ApnsReply.error(503, "Shutdown"), ("retry", "Shutdown")),
        (ApnsReply.error(403, "ExpiredProviderToken"), ("retry", "ExpiredProviderToken")),
        (ApnsReply.error(400, "BadExpirationDate"), ("failed", "BadExpirationDate")),
        (ApnsReply.error(413, "PayloadTooLarge"), ("failed", "PayloadTooLarge")),
        (ApnsReply.error(403, "InvalidProviderToken"), ("failed", "InvalidProviderToken")),
    ],
)
async def test_every_apns_error_is_mapped_to_dead_retry_or_permanent(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, reply: ApnsReply, expected: tuple[str, str]
) -> None:
    push = notification(apns_token())
    apns_peer.script(push.token, reply)
    report = await apns_factory().send([push])
    kind, reason = expected
    if kind == "dead":
        assert [(d.push_id, d.device_id, d.token, d.reason) for d in report.dead_tokens] == [
            (push.push_id, push.device_id, push.token, reason)
        ]
    elif kind == "retry":
        assert [(r.push_id, r.reason) for r in report.retry] == [(push.push_id, reason)]
    else:
        assert [(f.push_id, f.reason) for f in report.failed_permanently] == [(push.push_id, reason)]
    lists = (report.accepted, report.retry, report.dead_tokens, report.failed_permanently)
    assert sum(map(len, lists)) == 1


async def test_retry_after_is_reported(apns_factory: ApnsFactory, apns_peer: ApnsPeer) -> None:
    push = notification(apns_token())
    apns_peer.script(push.token, ApnsReply.error(429, "TooManyRequests", retry_after="7"))
    report = await apns_factory().send([push])
    assert [(r.retry_after_s, r.reason) for r in report.retry] == [(7.0, "TooManyRequests")]


async def test_the_peer_refuses_a_provider_token_signed_by_another_key(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, tmp_path: Path
) -> None:
    other = make_apns_credentials(tmp_path)
    report = await apns_factory(key_pem=other.key_pem).send([notification(apns_token())])
    assert [f.reason for f in report.failed_permanently] == ["InvalidProviderToken"]
    assert not report.dead_tokens  # a configuration error never condemns the device's token


async def test_a_topic_of_another_app_is_refused(apns_factory: ApnsFactory, apns_peer: ApnsPeer) -> None:
    report = await apns_factory(topic="fr.other.app").send([notification(apns_token())])
    assert [f.reason for f in report.failed_permanently] == ["TopicDisallowed"]


async def test_a_body_over_the_limit_is_refused_before_sending(apns_factory: ApnsFactory, apns_peer: ApnsPeer) -> None:
    provider = apns_factory(max_payload_bytes=120)
    big, small = notification(apns_token(), badge=9999), notification(apns_token(), AlertClass.WIPE)
    report = await provider.send([big, small])
    assert [(f.push_id, f.reason) for f in report.failed_permanently] == [(big.push_id, "refused: payload_too_large")]
    assert report.accepted == [small.push_id]
    assert [r.token for r in apns_peer.records] == [small.token]  # the big one never left


async def test_a_payload_built_around_the_allow_list_never_leaves(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer
) -> None:
    # msgspec does not check constraints in a constructor: the provider checks the wire again.
    good = notification(apns_token())
    forged_push = PushNotification(
        push_id="00000000-0000-4000-8000-000000000001",
        device_id=good.device_id,
        token=good.token,
        payload=PushPayload(
            alert_class=AlertClass.MAIL,
            event_id="Mme Dupont, IRM genou",
            mailbox_id=good.payload.mailbox_id,
            loc_key=LocKey.NEW_MESSAGE,
        ),
        kind=PushKind.ALERT,
        priority=PushPriority.HIGH,
        expires_at=good.expires_at,
    )
    report = await apns_factory().send([forged_push])
    assert [f.reason for f in report.failed_permanently] == ["refused: not an opaque id"]
    assert apns_peer.records == []
    assert b"Dupont" not in apns_peer.raw_received


async def test_an_expired_push_is_dropped_unsent(apns_factory: ApnsFactory, apns_peer: ApnsPeer) -> None:
    push = notification(apns_token(), now=time.time() - 2 * 24 * 3600)
    report = await apns_factory().send([push])
    assert [(f.push_id, f.reason) for f in report.failed_permanently] == [(push.push_id, "expired")]
    assert apns_peer.records == []


async def test_each_send_has_its_own_timeout(apns_factory: ApnsFactory, apns_peer: ApnsPeer) -> None:
    stuck, fine = notification(apns_token()), notification(apns_token())
    apns_peer.script(stuck.token, ApnsReply.never())
    started = time.monotonic()
    report = await apns_factory(send_timeout_s=0.4).send([stuck, fine])
    elapsed = time.monotonic() - started
    assert [(r.push_id, r.reason) for r in report.retry] == [(stuck.push_id, "timeout")]
    assert report.accepted == [fine.push_id]
    assert 0.4 <= elapsed < 1.5


@pytest.mark.parametrize("late", [ApnsReply(delay_s=0.4), ApnsReply.error(503, "ServiceUnavailable")])
async def test_a_late_answer_after_a_timeout_keeps_the_connection(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, late: ApnsReply
) -> None:
    provider = apns_factory(send_timeout_s=0.2)
    slow = notification(apns_token())
    apns_peer.script(slow.token, ApnsReply(late.status, late.reason, delay_s=0.4))
    assert [r.reason for r in (await provider.send([slow])).retry] == ["timeout"]
    await asyncio.sleep(0.4)  # the answer arrives for a send that was given up
    again = [notification(apns_token()) for _ in range(3)]
    assert len((await provider.send(again)).accepted) == 3
    assert apns_peer.connections_opened == 1


async def test_an_unreachable_apns_is_a_temporary_failure(apns_factory: ApnsFactory) -> None:
    push = notification(apns_token())
    report = await apns_factory(server=f"127.0.0.1:{closed_port()}", send_timeout_s=0.5).send([push])
    assert [r.push_id for r in report.retry] == [push.push_id]
    assert report.retry[0].reason in ("timeout", "connection: ConnectionError", "connection: MaxAttemptsExceeded")


async def test_concurrency_is_bounded(apns_factory: ApnsFactory, apns_peer: ApnsPeer) -> None:
    apns_peer.default_delay_s = 0.1
    pushes = [notification(apns_token()) for _ in range(12)]
    provider = apns_factory(concurrency=3)
    started = time.monotonic()
    report = await provider.send(pushes)
    assert len(report.accepted) == 12
    assert apns_peer.max_in_flight == 3
    assert time.monotonic() - started >= 0.4  # 12 pushes, 3 at a time, 0.1 s each


async def test_the_bound_holds_across_concurrent_sends(apns_factory: ApnsFactory, apns_peer: ApnsPeer) -> None:
    apns_peer.default_delay_s = 0.05
    provider = apns_factory(concurrency=2)
    batches = [[notification(apns_token()) for _ in range(3)] for _ in range(3)]
    reports = await asyncio.gather(*(provider.send(batch) for batch in batches))
    assert sum(len(r.accepted) for r in reports) == 9
    assert apns_peer.max_in_flight == 2


async def test_the_apns_id_is_stable_across_retries(
    apns_factory: ApnsFactory, apns_peer: ApnsPeer, fake_time: FakeTime
) -> None:
    push = notification(apns_token())
    apns_peer.script(push.token, peer_replies.SERVICE_UNAVAILABLE, peer_replies.TOO_MANY_REQUESTS)
    result = await deliver_with_retries(
        apns_factory(),
        [push],
        policy=RetryPolicy(max_tries=5, base_delay_s=0.5, max_delay_s=30),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    assert result.accepted == [push.push_id] and result.tries == {push.push_id: 3}
    assert [(r.headers["apns-id"], r.status) for r in apns_peer.records] == [
        (push.push_id, 503),
        (push.push_id, 429),
        (push.push_id, 200),
    ]
