"""The circuit breaker's states, on a clock the test controls."""

from services.responders.breaker import CircuitBreaker


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_opens_after_the_threshold_and_lets_one_probe_through_after_the_cool_down():
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 10
    assert breaker.allow() and breaker.state == "half_open"
    assert not breaker.allow()  # only one probe at a time
    breaker.success()
    assert breaker.state == "closed" and breaker.consecutive_failures == 0


def test_a_failed_probe_opens_again_and_a_success_resets_the_count():
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, cooldown=5, clock=clock)
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    clock.now = 5
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()


def test_misconfigured_opens_at_once_and_a_cancelled_probe_is_released():
    clock = Clock()
    breaker = CircuitBreaker(threshold=5, cooldown=5, clock=clock)
    breaker.failure(misconfigured=True)
    assert breaker.state == "misconfigured" and not breaker.allow()
    clock.now = 5
    assert breaker.allow()
    breaker.release()  # the probe was cancelled: another may go
    assert breaker.allow()
