"""A circuit breaker per operator endpoint: fail fast while it is down, probe with backoff.

When the operator refuses connections or times out, every phone request would otherwise wait for
its own connect timeout, and the companion would hammer a recovering server. After a failure the
circuit *opens* for a pause that doubles with each consecutive failure (``base_s``, doubling, up to
``max_s``), with jitter so that many companion instances do not probe in step. While open, attempts
fail at once with :class:`OperatorUnavailableError` and a ``retry_after`` equal to the rest of the pause.
When the pause is over, one attempt goes through (half-open); its success closes the circuit.

Only *reachability* counts (:class:`OperatorUnreachableError`): an operator that answers — even
"wrong password" — is up.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from backend.mail.operator.errors import OperatorUnavailableError, OperatorUnreachableError
from core.errors import DomainError


class Circuit:
    def __init__(
        self,
        *,
        base_s: float = 0.5,
        max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._base_s = base_s
        self._max_s = max_s
        self._clock = clock
        self._jitter = jitter
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def failures(self) -> int:
        """Consecutive failed attempts (0: closed)."""
        return self._failures

    @property
    def is_open(self) -> bool:
        return self._failures > 0 and self._clock() < self._open_until

    def check(self) -> None:
        """Let an attempt through, or raise :class:`OperatorUnavailableError` at once."""
        if self._failures == 0:
            return
        remaining = self._open_until - self._clock()
        if remaining > 0:
            raise OperatorUnavailableError(remaining, "operator unavailable (circuit open)")
        if self._probing:
            raise OperatorUnavailableError(1, "operator unavailable (probing)")
        self._probing = True

    def record_success(self) -> None:
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    def record_failure(self) -> float:
        """Open (or keep open) the circuit; returns the seconds until the next attempt."""
        now = self._clock()
        if self._failures and now < self._open_until and not self._probing:
            # concurrent attempts that started before the circuit opened: one outage, one failure
            return self._open_until - now
        self._failures += 1
        self._probing = False
        pause: float = min(self._max_s, self._base_s * 2.0 ** min(self._failures - 1, 32))
        pause *= 0.5 + self._jitter() / 2  # "equal jitter": between half and all of the pause
        self._open_until = now + pause
        return pause

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Guard one connection attempt: check first, record what happened.

        :class:`OperatorUnreachableError` from the attempt opens the circuit and is re-raised with the
        backoff as ``retry_after``; any other domain error (auth refused…) proves the operator up.
        """
        self.check()
        try:
            yield
        except OperatorUnreachableError as exc:
            pause = self.record_failure()
            raise OperatorUnreachableError(pause, exc.detail) from exc
        except OperatorUnavailableError:
            self._probing = False  # reached, then lost: no verdict on the next connection
            raise
        except DomainError:
            self.record_success()
            raise
        except BaseException:
            self._probing = False  # cancelled: no verdict on the operator
            raise
        else:
            self.record_success()
