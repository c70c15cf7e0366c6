"""ChatService with recording responders and notifier: context, streaming, escalation."""

from collections.abc import AsyncIterator

import pytest

from services.chat import ChatService
from services.config import Settings
from services.container import in_process_redis
from services.crypto import Sealer, new_key
from services.escalation import EscalationPolicy
from services.metrics import Metrics
from services.responders.base import Delta, Prompt, Reply, Reset, Responder, ResponderError
from services.sessions import SessionManager
from services.store import SessionStore


class Recording(Responder):
    name = "recording"

    def __init__(self, events=None, fail=False):
        self.prompts: list[Prompt] = []
        self.events = events
        self.fail = fail

    async def respond(self, prompt: Prompt) -> Reply:
        raise NotImplementedError

    async def stream(self, prompt: Prompt) -> AsyncIterator:
        self.prompts.append(prompt)
        if self.fail:
            raise ResponderError("recording", "down")
        for event in self.events or [Reply(f"echo {prompt.message}", 0.9, "recording")]:
            yield event


class Notes:
    def __init__(self):
        self.log = []

    def __getattr__(self, name):
        async def record(*args, **kwargs):
            self.log.append((name, *args))

        return record


def service(responder, max_history=2):
    s = Settings(_env_file=None)
    notes = Notes()
    chat = ChatService(
        sessions=SessionManager(
            SessionStore(in_process_redis()), Sealer.from_setting(new_key()), ttl_ms=60_000
        ),
        responder=responder,
        policy=EscalationPolicy(s.escalation_patterns, 0.5),
        metrics=Metrics(),
        max_history=max_history,
        max_message_length=50,
        notifier=notes,
    )
    return chat, notes


async def test_the_responder_sees_only_the_last_max_history_messages():
    responder = Recording()
    chat, _ = service(responder, max_history=2)
    session = await chat.start_session(user_id="u")
    for i in range(3):
        await chat.send(session_id=session.id, user_id=None, message=f"m{i}")
    last = responder.prompts[-1]
    assert last.message == "m2"
    assert [(t.role, t.content) for t in last.history] == [("user", "m1"), ("assistant", "echo m1")]


async def test_streamed_deltas_and_resets_reach_live_clients_then_the_final_reply():
    events = [
        Delta("Hel"),
        Reset("openai", "cut"),
        Delta("Hello"),
        Reply("Hello there", 0.8, "gemini"),
    ]
    chat, notes = service(Recording(events))
    session = await chat.start_session(user_id="u")
    result = await chat.send(session_id=session.id, user_id="u", message="hi")
    names = [entry[0] for entry in notes.log]
    assert names == [
        "customer_message",
        "typing",
        "chunk",
        "reset",
        "chunk",
        "typing",
        "bot_message",
    ]
    assert result.text == "Hello there" and result.provider == "gemini"
    assert notes.log[-1][2]["messageId"] == notes.log[2][2]


async def test_no_responder_at_all_is_a_technical_error_escalation_not_a_crash():
    chat, notes = service(Recording(fail=True))
    session = await chat.start_session(user_id="u")
    result = await chat.send(session_id=session.id, user_id="u", message="hi")
    assert result.provider == "none" and result.confidence == 0
    assert [r.rule for r in result.reasons] == ["technical_error"]
    assert "member of our team" in result.text
    assert [e[0] for e in notes.log].count("escalation") == 1
    calls = len(chat.responder.prompts)
    second = await chat.send(session_id=session.id, user_id="u", message="hello?")
    assert [e[0] for e in notes.log].count("escalation") == 1  # one handoff per episode
    assert second.held and second.status == "escalated" and len(chat.responder.prompts) == calls
    stored, transcript = await chat.history(session.id)
    roles = [(e["role"], e.get("event"), e.get("notice")) for e in transcript]
    assert stored.status == "escalated"
    assert roles == [
        ("user", None, None),
        ("assistant", None, None),
        ("system", "escalated", None),
        ("user", None, None),
        ("assistant", None, True),  # at most one queue notice a while
    ]


@pytest.mark.parametrize("text", ["", "   ", "x" * 51])
async def test_blank_or_too_long_messages_are_refused_before_anything_is_stored(text):
    from services.errors import InvalidMessage

    chat, notes = service(Recording())
    session = await chat.start_session(user_id="u")
    with pytest.raises(InvalidMessage):
        await chat.send(session_id=session.id, user_id="u", message=text)
    assert (await chat.history(session.id))[1] == [] and notes.log == []
