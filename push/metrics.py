"""Prometheus metrics of the push pipeline. Labels are classes, providers and outcome codes only.

A label value never comes from a message, a device name or an address: each is one of a few
fixed words, so metric cardinality stays small and no content can leak through a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class PushMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._pushes = Counter(
            "mssc_pushes_total",
            "Pushes by class, provider and outcome",
            ["alert_class", "provider", "outcome"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "mssc_push_latency_seconds",
            "Event queued to provider acceptance",
            ["provider"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self._depth = Gauge("mssc_queue_depth", "Pending plus undelivered entries", ["stream"], registry=self.registry)
        self._pruned = Counter(
            "mssc_push_tokens_pruned_total", "Dead tokens pruned", ["provider"], registry=self.registry
        )
        self._suppressed = Counter(
            "mssc_pushes_suppressed_total",
            "Pushes not sent because of availability",
            ["alert_class"],
            registry=self.registry,
        )
        self._watched = Gauge("mssc_watched_mailboxes", "Mailboxes watched by this process", registry=self.registry)
        self._idling = Gauge(
            "mssc_watched_mailboxes_connected", "Watched mailboxes with a live IMAP session", registry=self.registry
        )
        self._live_watchers = Gauge(
            "mssc_live_watchers", "Watcher processes sharing the mailboxes", registry=self.registry
        )

    def outcome(self, alert_class: str, provider: str, outcome: str) -> None:
        self._pushes.labels(alert_class, provider, outcome).inc()

    def latency(self, provider: str, seconds: float) -> None:
        self._latency.labels(provider).observe(max(0.0, seconds))

    def depth(self, stream: str, value: int) -> None:
        self._depth.labels(stream).set(value)

    def pruned(self, provider: str) -> None:
        self._pruned.labels(provider).inc()

    def suppressed(self, alert_class: str) -> None:
        self._suppressed.labels(alert_class).inc()

    def watcher(self, *, watching: int, connected: int, live_watchers: int) -> None:
        """The watcher's counts, read when metrics are scraped (numbers only: no mailbox is named)."""
        self._watched.set(watching)
        self._idling.set(connected)
        self._live_watchers.set(live_watchers)
