"""Builds the long-lived services from settings, at start-up, and closes them at shutdown.

The app's lifespan owns one Container; REST handlers and socket handlers reach the
same instance, so both adapters drive the same ChatService.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from redis.asyncio import Redis

from services.agents import AgentService
from services.analytics import Analytics
from services.analytics.clock import Clock
from services.assist.proposals import Proposals
from services.assist.suggestions import Suggestions
from services.assist.summary import HandoffSummaries
from services.chat import ChatService
from services.config import Settings
from services.conversations import ConversationService
from services.crypto import EncryptionKeyError, load_sealer
from services.escalation import EscalationPolicy
from services.events import Events
from services.guard.limits import RateLimits
from services.handoff import Handoff
from services.hours import BusinessHours, BusinessHoursError
from services.i18n import Catalogues
from services.i18n.catalogue import CatalogueError
from services.identity import Identities
from services.inflight import InFlight
from services.knowledge.formats import KnowledgeFormatError
from services.knowledge.service import KnowledgeService
from services.language import LanguageDetector
from services.metrics import Metrics
from services.notifier import Notifier
from services.notify import Notifications
from services.privacy import PrivacyService, UserIndex
from services.prometheus import Exporter
from services.redis_client import open_redis, parse_location
from services.redis_observe import observe_redis
from services.responders.chain import ResponderChain
from services.responders.factory import build_responders
from services.responders.local import LocalResponder
from services.routing import Router, TeamRules
from services.sessions import SessionManager
from services.store import SessionStore
from services.tickets import TicketService

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The service cannot start as configured; the message names the setting."""


def language_detector(languages: list[str]) -> LanguageDetector:
    try:
        return LanguageDetector(languages)
    except ValueError as exc:
        raise StartupError(f"DETECT_LANGUAGES: {exc}") from exc


def redis_location(dsn: str, *, cluster: bool = False) -> str:
    try:
        return parse_location(dsn, cluster=cluster).describe()
    except ValueError:
        parts = urlsplit(dsn.split(",")[0])
        return f"{parts.hostname}:{parts.port or 6379}"


def in_process_redis() -> Redis:
    """A Redis that lives in this process (fakeredis, with Lua): nothing persists or is shared."""
    from fakeredis import FakeAsyncRedis

    return FakeAsyncRedis()


async def connect_redis(settings: Settings) -> Redis | None:
    """A live Redis client, or None when none is configured and none answers locally."""
    try:
        redis = open_redis(
            settings.redis_dsn,
            cluster=settings.redis_cluster,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=30,
            retry_on_timeout=True,
        )
    except ValueError as exc:
        raise StartupError(f"{settings.redis_setting_name}: {exc}") from exc
    try:
        await redis.ping()
    except Exception as exc:
        await redis.aclose()
        if settings.redis_explicit:
            raise StartupError(
                f"Redis at {redis_location(settings.redis_dsn, cluster=settings.redis_cluster)} "
                f"(from {settings.redis_setting_name}) is unreachable: {exc}"
            ) from exc
        log.warning(
            "NO REDIS: nothing answers at localhost:6379 and none is configured; sessions and "
            "agents live in this process's memory and are LOST on restart, and instances share "
            "nothing. Set REDIS_URL for real use."
        )
        return None
    return redis


class Container:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock  # analytics time (tests move it); None: the system clock
        self.analytics: Analytics | None = None  # counting, settling, reports
        self.metrics = Metrics()
        self.prometheus = Exporter(self)  # GET /metrics (services/prometheus.py)
        self.redis: Redis | None = None
        self.store: SessionStore | None = None
        self.knowledge: KnowledgeService | None = None
        self.chat: ChatService | None = None
        self.conversations: ConversationService | None = None
        self.agents: AgentService | None = None
        self.handoff: Handoff | None = None
        self.router: Router | None = None
        self.tickets: TicketService | None = None
        self.events = Events()  # sinks (webhooks, e-mail) are added as they start
        self.responder: ResponderChain | None = None
        self.notify: Notifications | None = None  # webhooks and on-call e-mail
        self.limits: RateLimits | None = None  # rate limits (services/guard/limits.py)
        self.privacy: PrivacyService | None = None  # erasure, export, retention
        self.summaries: HandoffSummaries | None = None  # agent assist (services/assist/)
        self.suggestions: Suggestions | None = None
        self.proposals: Proposals | None = None
        self.inflight = InFlight(settings.shutdown_grace)  # socket events being answered

    async def start(self, notifier: Notifier | None = None) -> None:
        s = self.settings
        detector = language_detector(s.detect_languages)
        # Its models take seconds to load, in the detection process (the loop stays free),
        # meanwhile the knowledge trains.
        warming = asyncio.create_task(detector.warm(), name="language detector")
        try:
            sealer = await asyncio.to_thread(
                load_sealer,
                s.session_encryption_key.get_secret_value() if s.session_encryption_key else None,
                production=s.is_production,
                key_file=s.session_key_file,
            )
        except EncryptionKeyError as exc:
            raise StartupError(str(exc)) from exc
        self.redis = await connect_redis(s)
        self.store = (
            SessionStore(self.redis, s.redis_key_prefix)
            if self.redis
            else SessionStore(in_process_redis(), s.redis_key_prefix, backend="memory")
        )
        observe_redis(self.store.redis, self.metrics)  # latency histogram and spans
        self.limits = RateLimits.from_settings(s, self.redis, self.store.redis, self.metrics)
        secret = s.agent_token_secret
        self.agents = AgentService(
            self.store.redis,
            s.redis_key_prefix,
            signing_key=secret.get_secret_value().encode()
            if secret
            else sealer.derive("agent-tokens"),
            token_ttl=s.agent_token_ttl,
            max_failures=s.login_max_failures,
            window=s.login_window,
            presence_ttl=s.presence_ttl,
        )
        if (
            s.admin_email
            and s.admin_password
            and await self.agents.ensure_admin(s.admin_email, s.admin_password.get_secret_value())
        ):
            log.info("the first admin was created from ADMIN_EMAIL")
        self.knowledge = KnowledgeService(s, redis=self.redis, key_prefix=s.redis_key_prefix)
        try:
            await self.knowledge.start()
        except KnowledgeFormatError as exc:
            raise StartupError(f"KNOWLEDGE_BASE_PATH: {exc}") from exc
        except RuntimeError as exc:  # e.g. the semantic engine without its extra installed
            raise StartupError(f"KNOWLEDGE_ENGINE: {exc}") from exc
        self.responder = build_responders(
            s,
            LocalResponder(self.knowledge, s.escalation_confidence_threshold),
            redis=self.store.redis,
            metrics=self.metrics,
        )
        users = UserIndex(self.store.redis, s.redis_key_prefix, sealer.derive_all("user-index"))
        sessions = SessionManager(
            self.store, sealer, ttl_ms=s.session_timeout, index_user=users.add
        )
        self.proposals = Proposals(
            self.store.redis, s.redis_key_prefix, sessions=sessions, knowledge=self.knowledge
        )
        self.privacy = PrivacyService(
            self.store.redis,
            s.redis_key_prefix,
            sessions=sessions,
            users=users,
            retention_days=s.transcript_retention_days,
            interval=s.retention_interval,
            proposals=self.proposals,
        )
        self.privacy.start()
        self.router = Router(
            self.store.redis,
            s.redis_key_prefix,
            sessions=sessions,
            notifier=notifier or Notifier(),
            directory=self.agents,
            mode=s.routing,
            offer_timeout_ms=s.offer_timeout * 1000,
            default_capacity=s.agent_capacity,
        )
        self.router.start()
        try:
            teams = TeamRules.parse(s.routing_teams, self.knowledge.entry)
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        try:
            self.catalogues = await asyncio.to_thread(Catalogues.load, s.messages_dir)
        except CatalogueError as exc:
            raise StartupError(f"MESSAGES_DIR: {exc}") from exc
        redact_region = s.pii_phone_region if s.redact_pii_for_llm else None
        model = self.responder if self.responder.needs_grounding else None  # a model is set
        self.summaries = HandoffSummaries(
            sessions=sessions,
            notifier=notifier or Notifier(),
            model=model if s.handoff_summary_model else None,
            timeout=s.summary_timeout,
            redact_region=redact_region,
            frustration_threshold=s.escalation_frustration_threshold,
        )
        self.suggestions = Suggestions(
            sessions=sessions,
            knowledge=self.knowledge,
            model=model,
            timeout=s.suggestion_timeout,
            min_score=s.suggestion_min_score,
            redact_region=redact_region,
            metrics=self.metrics,
            events=self.events,
        )
        self.conversations = ConversationService(
            catalogues=self.catalogues,
            sessions=sessions,
            notifier=notifier or Notifier(),
            metrics=self.metrics,
            agents=self.agents,
            presence=self.agents,
            notice_interval_ms=s.hold_notice_interval * 1000,
            max_message_length=s.max_message_length,
            events=self.events,
            router=self.router,
            summaries=self.summaries,
            suggestions=self.suggestions,
        )
        self.router.on_change = self.conversations.queue_changed
        try:
            hours = BusinessHours(s.business_hours, s.business_timezone, s.holidays)
        except BusinessHoursError as exc:
            raise StartupError(f"BUSINESS_HOURS/BUSINESS_TIMEZONE/HOLIDAYS: {exc}") from exc
        self.handoff = Handoff(
            catalogues=self.catalogues,
            sessions=sessions,
            notifier=notifier or Notifier(),
            hours=hours,
            presence=self.agents,
            off_hours_bot=s.off_hours_bot,
            timeout_ms=s.handoff_timeout * 1000,
        )
        self.handoff.start()
        self.tickets = TicketService(
            self.store.redis,
            s.redis_key_prefix,
            sessions=sessions,
            notifier=notifier or Notifier(),
            events=self.events,
        )
        self.notify = Notifications(
            s,
            self.store.redis,
            sealer,
            presence=self.agents,
            transcripts=sessions,
            in_process=self.redis is None,
            metrics=self.metrics,
        )
        for sink in self.notify.sinks:
            self.events.add(sink)
        self.notify.worker.events = self.events  # delivery results, for analytics
        self.analytics = Analytics(self.store.redis, s, clock=self.clock)
        self.events.add(self.analytics)
        self.analytics.start()
        await self.notify.start()
        await warming  # the first customer's message does not wait for the models
        secret = s.widget_identity_secret
        self.identities = Identities(
            sessions, secret.get_secret_value().encode() if secret else None
        )
        self.chat = ChatService(
            catalogues=self.catalogues,
            detector=detector,
            knowledge_language=s.knowledge_language,
            sessions=sessions,
            conversations=self.conversations,
            handoff=self.handoff,
            teams=teams,
            responder=self.responder,
            policy=EscalationPolicy.from_settings(s),
            metrics=self.metrics,
            max_history=s.max_conversation_history,
            max_message_length=s.max_message_length,
            grounding=self.knowledge,
            grounding_k=s.retrieval_top_k,
            context_in_prompt=self.responder.needs_grounding,
            notifier=notifier,
            redact_region=s.pii_phone_region if s.redact_pii_for_llm else None,
            events=self.events,
        )
        log.info(
            "started",
            extra={
                "store": self.store.backend,
                "responders": self.responder.names,
                "env": s.app_env,
            },
        )

    async def aclose(self) -> None:
        if self.analytics is not None:
            await self.analytics.aclose()
        if self.privacy is not None:
            await self.privacy.aclose()
        if self.notify is not None:
            await self.notify.aclose()
        if self.handoff is not None:
            await self.handoff.aclose()
        if self.router is not None:
            await self.router.aclose()
        if self.summaries is not None:
            await self.summaries.aclose()
        if self.responder is not None:
            await self.responder.aclose()
        if self.knowledge is not None:
            await self.knowledge.aclose()
        if self.limits is not None:
            await self.limits.aclose()
        if self.store is not None:
            await self.store.aclose()
