"""Agent assist: what helps a person pick a conversation up in seconds.

- summary.py: the handoff summary (extractive at once, then a model's when configured);
- suggestions.py: grounded reply suggestions, and which one a reply came from;
- proposals.py: agents' replies proposed as knowledge entries, accepted by an admin.
"""
