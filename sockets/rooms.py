"""Room names, in one place."""

AGENTS = "agents"


def session_room(session_id: str) -> str:
    return f"session:{session_id}"
