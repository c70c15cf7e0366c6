"""Namespace and room names, in one place."""

AGENTS = "agents"  # on `/`: API-key agents (join-agents); on `/agents`: every signed-in agent
ADMINS = "admins"
AGENTS_NAMESPACE = "/agents"


def session_room(session_id: str) -> str:
    return f"session:{session_id}"


def agent_room(agent_id: str) -> str:
    return f"agent:{agent_id}"


def watch_room(session_id: str) -> str:
    return f"watch:{session_id}"
