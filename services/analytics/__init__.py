"""Conversation analytics: domain events counted into shared Redis aggregates (per-day
hashes in ANALYTICS_TIMEZONE, HyperLogLogs, fixed-bucket histograms), one outcome per
episode settled atomically (also by a background job for outcomes that need time to
pass), the unanswered questions kept redacted for the gaps report, and the reports the
Analytics API serves. See README "Analytics" for the definitions."""

from services.analytics.service import Analytics

__all__ = ["Analytics"]
