"""When a person must take over: the escalation policy and its rules (see `policy`)."""

from services.escalation.policy import EscalationPolicy, Reason

__all__ = ["EscalationPolicy", "Reason"]
