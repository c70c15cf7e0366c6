"""Small in-memory responders for chain tests: each call plays the next step of a script."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from services.responders.base import Delta, Prompt, Reply, Reset, Responder, ResponderError, Usage


@dataclass
class Step:
    """What one call does: stream `chunks` (each after `delay` s, the first after
    `first_delay` s), then fail with `error`, hang, or answer."""

    chunks: tuple[str, ...] = ()
    error: ResponderError | Exception | None = None
    hang: bool = False
    first_delay: float = 0.0
    delay: float = 0.0
    no_reply: bool = False
    usage: Usage | None = None


def ok(*chunks: str, usage: Usage | None = None, first_delay: float = 0.0) -> Step:
    return Step(chunks=chunks or ("fine",), usage=usage, first_delay=first_delay)


def fail(
    provider: str, reason: str = "server error (500)", *, after: tuple[str, ...] = (), **kwargs
) -> Step:
    return Step(chunks=after, error=ResponderError(provider, reason, **kwargs))


def hang(*, after: tuple[str, ...] = ()) -> Step:
    return Step(chunks=after, hang=True)


@dataclass
class Scripted(Responder):
    """Plays `steps` in order, one per call; the last step repeats."""

    name: str
    steps: list[Step] = field(default_factory=lambda: [ok()])
    in_process: bool = False
    model: str | None = None
    calls: list[str] = field(default_factory=list)  # "respond" or "stream", per call
    cancelled: int = 0
    closed: bool = False
    gate: asyncio.Event | None = None  # when set, every call waits for it first

    def _next(self, kind: str) -> Step:
        self.calls.append(kind)
        return self.steps[min(len(self.calls), len(self.steps)) - 1]

    async def respond(self, prompt: Prompt) -> Reply:
        step = self._next("respond")
        async for event in self._play(step, prompt):
            if isinstance(event, Reply):
                return event
        raise AssertionError("unreachable")

    async def stream(self, prompt: Prompt) -> AsyncIterator[Delta | Reset | Reply]:
        step = self._next("stream")
        async for event in self._play(step, prompt):
            if isinstance(event, Delta | Reply):
                yield event

    async def _play(self, step: Step, prompt: Prompt) -> AsyncIterator[Delta | Reply]:
        try:
            if self.gate is not None:
                await self.gate.wait()
            if step.first_delay:
                await asyncio.sleep(step.first_delay)
            for index, chunk in enumerate(step.chunks):
                if index and step.delay:
                    await asyncio.sleep(step.delay)
                yield Delta(chunk)
            if step.hang:
                await asyncio.Event().wait()
            if step.error is not None:
                raise step.error
            if step.no_reply:
                return
            yield Reply("".join(step.chunks), 0.9, self.name, usage=step.usage)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def aclose(self) -> None:
        self.closed = True
