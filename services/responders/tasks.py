"""Side jobs for a language model besides answering the customer: a handoff summary for
an agent, a drafted reply. Each has its own system prompt, its own JSON schema (strict-mode
compatible) and its own time limit; the chain walks its providers for it with the same
breakers, retries and token budgets as for answers (`ResponderChain.complete`).

A result that is not one JSON object carrying every property the schema requires is that
provider's failure (`ResponderError`, not retryable), like a malformed answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from services.responders.base import ResponderError, Usage

MALFORMED = "malformed task result"
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Task:
    """One side job: `name` names its schema (OpenAI's json_schema name)."""

    name: str
    system: str
    user: str
    schema: dict[str, Any]
    timeout: float  # seconds for the whole job, every attempt and provider included
    session_id: str | None = None  # whose token budget pays for it


@dataclass(frozen=True, slots=True)
class TaskResult:
    data: dict[str, Any]
    provider: str
    usage: Usage | None = None


def parse_task(text: str, provider: str, task: Task, usage: Usage | None) -> TaskResult:
    """The model's JSON for `task`, or that provider's failure."""
    if fenced := _FENCE.match(text):  # OpenAI-compatible servers without structured output
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        raise ResponderError(provider, MALFORMED, retryable=False, detail="not JSON") from None
    if not isinstance(data, dict):
        raise ResponderError(provider, MALFORMED, retryable=False, detail="not an object")
    missing = [key for key in task.schema.get("required", ()) if key not in data]
    if missing:
        raise ResponderError(
            provider, MALFORMED, retryable=False, detail="missing " + ", ".join(missing)
        )
    return TaskResult(data, provider, usage)
