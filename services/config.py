"""One typed settings object, read once from the environment (and `.env`).

Every variable of the product brief keeps its name; `NODE_ENV` is accepted as
well as `APP_ENV`. An invalid value stops start-up with a message naming the
variable (see `load_settings`).
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from limits import parse as parse_rate_limit
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_BASE = ROOT / "services" / "knowledge" / "demo" / "shop.yaml"

CommaList = Annotated[list[str], NoDecode]
# Webhook retries: three within the first minute, then backing off to a day (about 47 h in all).
DEFAULT_RETRY_SCHEDULE = ("5s", "15s", "30s", "2m", "10m", "30m", "1h", "3h", "6h", "12h", "24h")


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.I)
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds from "500ms", "5s", "2m", "1h", "1d" or a plain number of seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 5s, 2m, 1h)")
    return float(match.group(1)) * _UNIT[(match.group(2) or "s").lower()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    # --- service -------------------------------------------------------------
    app_env: Literal["development", "production", "test"] = Field(
        default="development", validation_alias=AliasChoices("APP_ENV", "NODE_ENV")
    )
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="also serve /metrics here, without credentials"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    cors_origins: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="unset: * in development, same origin only in production"
    )
    embed_origins: CommaList = Field(
        default_factory=list, description="sites that may frame the pages, besides this one"
    )
    version: str = "1.0.0"
    keep_alive_timeout: int = Field(default=5, ge=1, le=600, description="seconds idle")
    max_connections: int = Field(
        default=1000, ge=0, description="open connections per process (0: no limit)"
    )
    shutdown_grace: float = Field(
        default=10, ge=0, le=300, description="seconds to finish replies in flight on SIGTERM"
    )

    # --- redis ---------------------------------------------------------------
    redis_url: str | None = None
    redis_host: str = "localhost"
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_username: str | None = Field(default=None, description="a Redis ACL user")
    redis_password: SecretStr | None = None
    redis_tls: bool = Field(default=False, description="rediss:// for REDIS_HOST/REDIS_PORT")
    redis_db: int = Field(default=0, ge=0)
    redis_key_prefix: str = Field(
        default="supportbot:", pattern=r"^[^{}]*$", description="no braces: see services/keys.py"
    )
    redis_cluster: bool = Field(
        default=False, description="REDIS_URL names Redis Cluster nodes (one, or a comma list)"
    )
    socketio_redis_url: str | None = Field(
        default=None, description="a Redis for Socket.IO fan-out only (default: REDIS_URL)"
    )

    # --- sessions --------------------------------------------------------------
    session_timeout: int = Field(default=1_800_000, gt=0, description="milliseconds")
    max_conversation_history: int = Field(default=10, ge=1)
    max_message_length: int = Field(default=4000, ge=1)
    session_encryption_key: SecretStr | None = None
    session_key_file: Path = ROOT / ".session-key"

    # --- escalation ------------------------------------------------------------
    escalation_keywords: CommaList = Field(
        default_factory=lambda: [
            "urgent",
            "emergency",
            "complaint",
            "supervisor",
            "manager",
            "cancel",
            "refund",
        ]
    )
    escalation_confidence_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    escalation_request_phrases: CommaList = Field(
        default_factory=list, description="extra phrases asking for a person (`requested`)"
    )
    escalation_frustration_threshold: float = Field(
        default=-0.7, ge=-1.0, le=0.0, description="VADER compound score (`frustration`)"
    )
    escalation_max_failures: int = Field(
        default=2, ge=0, description="weak answers in a row (`repeated_failure`); 0 is off"
    )
    escalation_failure_confidence: float = Field(default=0.65, ge=0.0, le=1.0)
    escalation_repeat_similarity: float = Field(
        default=0.8, ge=0.0, le=1.0, description="a repeated question; 0 is off"
    )
    escalation_priority_keywords: CommaList = Field(default_factory=lambda: ["urgent", "emergency"])

    # --- knowledge ---------------------------------------------------------------
    knowledge_base_path: Path = DEFAULT_KNOWLEDGE_BASE
    knowledge_engine: Literal["classical", "semantic"] = "classical"
    semantic_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    retrieval_top_k: int = Field(default=3, ge=1, le=20)
    knowledge_language: str = Field(
        default="en", pattern=r"^[a-z]{2}$", description="the language the knowledge base is in"
    )

    # --- languages and the widget -------------------------------------------------
    detect_languages: CommaList = Field(
        default_factory=lambda: ["en", "de", "fr", "es", "it", "pt", "nl"],
        description="languages the detector chooses from (empty: no detection)",
    )
    messages_dir: Path | None = Field(
        default=None, description="per-language JSON overrides of the message catalogues"
    )
    widget_identity_secret: SecretStr | None = Field(
        default=None, description="HMAC key for SupportBot.identify signatures"
    )
    admin_api_key: SecretStr | None = None

    # --- agents (the human side) -------------------------------------------------
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    agent_token_ttl: int = Field(default=43_200, gt=0, description="seconds a sign-in lasts")
    agent_token_secret: SecretStr | None = None
    login_max_failures: int = Field(default=5, ge=1, description="per account or IP per window")
    login_window: int = Field(default=300, gt=0, description="seconds")
    hold_notice_interval: int = Field(
        default=120, ge=0, description="seconds between queue notices to a waiting customer"
    )
    presence_ttl: int = Field(
        default=45, ge=5, description="seconds an agent socket counts as live"
    )

    # --- business hours and the no-agent path ------------------------------------------
    business_hours: str | None = Field(default=None, description="e.g. Mon-Fri 09:00-17:30")
    business_timezone: str = "UTC"
    holidays: str | None = Field(default=None, description="YYYY-MM-DD, comma-separated")
    off_hours_bot: bool = Field(default=True, description="the bot answers while nobody can")
    handoff_timeout: int = Field(
        default=300, ge=0, description="seconds before an unclaimed customer is offered e-mail"
    )

    # --- routing to an online agent (services/routing.py) ------------------------------
    routing: Literal["manual", "round_robin", "least_busy"] = "manual"
    offer_timeout: int = Field(default=30, ge=1, description="seconds an offer waits")
    agent_capacity: int = Field(default=5, ge=1, description="default concurrent conversations")
    routing_teams: CommaList = Field(
        default_factory=list, description="keyword=team pairs, e.g. refund=billing"
    )

    # --- notifications: webhooks and e-mail (services/notify/) -------------------
    webhook_urls: CommaList = Field(default_factory=list, description="endpoints for every event")
    webhook_secret: SecretStr | None = Field(default=None, description="whsec_… for WEBHOOK_URLS")
    webhook_retry_schedule: CommaList = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE),
        description="delay before each retry (s, m, h, d; plain numbers are seconds)",
    )
    webhook_retry_jitter: float = Field(default=0.2, ge=0.0, le=1.0, description="± fraction")
    webhook_timeout: float = Field(default=10.0, gt=0, description="seconds per attempt")
    webhook_concurrency: int = Field(default=16, ge=1, le=1000, description="per instance")
    webhook_poll_interval: float = Field(default=1.0, gt=0, le=4, description="seconds")
    webhook_claim_idle: float = Field(
        default=60.0, gt=0, description="seconds before a crashed instance's delivery is taken over"
    )
    webhook_log_ttl: int = Field(default=604_800, gt=0, description="seconds the log is kept")
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Support Bot <supportbot@localhost>"
    smtp_timeout: float = Field(default=15.0, gt=0, description="seconds per attempt")
    smtp_retry_schedule: CommaList = Field(
        default_factory=lambda: ["5s", "30s", "2m"], description="delay before each retry"
    )
    oncall_email: str | None = None

    # --- rate limits (services/guard/limits.py; `limits` notation, moving window) ------
    rate_limit_sessions: str = Field(default="10/hour", description="new sessions per address")
    rate_limit_messages: str = Field(default="20/minute", description="messages per session")
    rate_limit_requests: str = Field(default="600/minute", description="REST requests per address")
    rate_limit_socket_events: str = Field(default="120/minute", description="per connection")
    rate_limit_sockets: int = Field(default=20, ge=1, description="open sockets per address")
    rate_limit_agents: str = Field(
        default="3000/minute", description="per agent token or admin key (REST and socket)"
    )
    trusted_proxies: CommaList = Field(
        default_factory=list, description="IPs/CIDRs whose X-Forwarded-For is believed"
    )

    @field_validator(
        "rate_limit_sessions",
        "rate_limit_messages",
        "rate_limit_requests",
        "rate_limit_socket_events",
        "rate_limit_agents",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)  # a ValueError names the bad notation
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        items = _split_commas(value)
        if isinstance(items, list):
            for item in items:
                ipaddress.ip_network(str(item), strict=False)
        return items

    # --- AI providers ------------------------------------------------------------
    ai_provider_order: CommaList = Field(default_factory=lambda: ["openai", "gemini", "local"])
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4.1-mini"
    openai_base_url: str | None = None
    gemini_api_key: SecretStr | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = None
    provider_timeout: float = Field(default=15.0, gt=0, description="seconds per attempt")
    provider_first_token_timeout: float = Field(default=8.0, gt=0, description="seconds")
    message_deadline: float = Field(default=30.0, gt=0, description="seconds per message")
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    breaker_failure_threshold: int = Field(default=3, ge=1)
    breaker_cooldown: float = Field(default=30.0, gt=0, description="seconds")
    company_name: str = "Acme Shop"
    bot_persona: str = "a friendly, concise customer-support assistant"
    company_policy: str = (
        "Answer only from the provided knowledge. If the knowledge does not cover the "
        "question, say so and offer a human agent. Never invent prices, dates or policies."
    )
    # --- cost caps and output safety (services/guard/) ----------------------------------
    llm_max_output_tokens: int = Field(
        default=800, ge=64, description="max tokens of one model reply (both providers)"
    )
    session_token_budget: int = Field(
        default=20_000, ge=0, description="model tokens per session; 0 is off"
    )
    daily_token_budget: int = Field(
        default=2_000_000, ge=0, description="model tokens per UTC day, all instances; 0 is off"
    )
    forbidden_promises: CommaList = Field(
        default_factory=lambda: ["refunds", "cancellations", "account changes"],
        description="actions the bot must never promise to take itself",
    )

    # --- analytics (services/analytics/) ---------------------------------------------------
    analytics_timezone: str = Field(
        default="UTC", description="IANA time zone whose calendar days the analytics count in"
    )
    assumed_resolution_after: float = Field(
        default=86_400.0,
        gt=0,
        description="seconds without a customer message after a bot answer: assumed resolved",
    )
    analytics_abandoned_after: float = Field(
        default=1_800.0,
        gt=0,
        description="seconds an unclaimed escalation waits without a customer word: abandoned",
    )
    analytics_reopen_window: float = Field(
        default=604_800.0, gt=0, description="seconds after a resolution that a return reopens"
    )
    analytics_store_questions: bool = Field(
        default=True, description="keep unanswered questions (redacted) for the gaps report"
    )
    analytics_retention_days: float = Field(
        default=30.0, gt=0, description="days unanswered questions are kept"
    )
    analytics_settle_interval: float = Field(
        default=30.0, gt=0, description="seconds between runs of the outcome settling job"
    )
    analytics_prices: Annotated[dict[str, tuple[float, float]], NoDecode] = Field(
        default_factory=lambda: {
            "gpt-4.1-mini": (0.40, 1.60),
            "gemini-2.5-flash": (0.30, 2.50),
        },
        description="model=input/output price per million tokens, comma-separated",
    )
    analytics_currency: str = Field(default="USD", description="the currency of ANALYTICS_PRICES")

    # --- agent assist (services/assist/) ------------------------------------------------
    handoff_summary_model: bool = Field(
        default=True, description="a model writes the handoff summary when one is configured"
    )
    summary_timeout: float = Field(
        default=20.0, gt=0, description="seconds for the model's handoff summary, all attempts"
    )
    suggestion_timeout: float = Field(
        default=8.0, gt=0, description="seconds for the model's drafted reply suggestion"
    )
    suggestion_min_score: float = Field(
        default=0.2, ge=0, le=1, description="a knowledge entry's least score to be suggested"
    )

    # --- privacy (services/guard/redact.py, services/privacy.py, services/rotate.py) -------
    redact_pii_for_llm: bool = Field(
        default=True, description="placeholders instead of e-mails, phones, cards, IBANs to models"
    )
    pii_phone_region: str = Field(
        default="US", pattern=r"^[A-Za-z]{2}$", description="region of numbers without +code"
    )
    transcript_retention_days: float | None = Field(
        default=None,
        gt=0,
        description="resolved conversations, tickets, proposals; unset keeps them",
    )
    retention_interval: float = Field(default=3600.0, gt=0, description="seconds between sweeps")

    @field_validator(
        "cors_origins",
        "embed_origins",
        "escalation_keywords",
        "detect_languages",
        "escalation_request_phrases",
        "escalation_priority_keywords",
        "ai_provider_order",
        "routing_teams",
        "forbidden_promises",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("webhook_urls", "webhook_retry_schedule", "smtp_retry_schedule", mode="before")
    @classmethod
    def _comma_separated_notify(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("webhook_retry_schedule", "smtp_retry_schedule")
    @classmethod
    def _durations(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_duration(item)
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        bad = [u for u in value if not re.match(r"^https?://[^\s/]+", u)]
        if bad:
            raise ValueError(f"not http(s) URLs: {bad}")
        return value

    @field_validator("embed_origins")
    @classmethod
    def _csp_sources(cls, value: list[str]) -> list[str]:
        bad = [o for o in value if not re.fullmatch(r"https?://[\w.*-]+(:\d+)?", o)]
        if bad:
            raise ValueError(f"not origins like https://www.example.com: {bad}")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("must start with whsec_ (a base64 key, as Standard Webhooks)")
        return value

    @model_validator(mode="after")
    def _webhooks_complete(self) -> Settings:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("WEBHOOK_URLS needs WEBHOOK_SECRET (whsec_…)")
        if self.webhook_claim_idle <= self.webhook_timeout:
            raise ValueError("WEBHOOK_CLAIM_IDLE must be longer than WEBHOOK_TIMEOUT")
        return self

    @field_validator("analytics_timezone")
    @classmethod
    def _analytics_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("analytics_prices", mode="before")
    @classmethod
    def _prices(cls, value: object) -> object:
        """`gpt-4.1-mini=0.40/1.60,gemini-2.5-flash=0.30/2.50` (per million tokens)."""
        if not isinstance(value, str):
            return value
        prices: dict[str, tuple[float, float]] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            model, sep, pair = item.partition("=")
            given, slash, taken = pair.partition("/")
            try:
                prices[model.strip()] = (float(given), float(taken))
            except ValueError:
                raise ValueError(f"{item!r}: expected model=input/output, e.g. m=0.4/1.6") from None
            if not (sep and slash and model.strip()):
                raise ValueError(f"{item!r}: expected model=input/output, e.g. m=0.4/1.6")
        return prices

    @field_validator("ai_provider_order")
    @classmethod
    def _known_providers(cls, value: list[str]) -> list[str]:
        order = [name.lower() for name in value]
        unknown = sorted(set(order) - {"openai", "gemini", "local"})
        if unknown:
            raise ValueError(f"unknown provider(s) {unknown}; use openai, gemini, local")
        return order

    @field_validator("app_env", mode="before")
    @classmethod
    def _lower_env(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "redis_url",
        "socketio_redis_url",
        "redis_password",
        "redis_username",
        "session_encryption_key",
        "openai_api_key",
        "gemini_api_key",
        "openai_base_url",
        "gemini_base_url",
        "admin_api_key",
        "admin_email",
        "admin_password",
        "business_hours",
        "holidays",
        "agent_token_secret",
        "webhook_secret",
        "smtp_host",
        "smtp_port",
        "smtp_user",
        "smtp_password",
        "oncall_email",
        "transcript_retention_days",
        "messages_dir",
        "widget_identity_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    # --- derived -----------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def redis_explicit(self) -> bool:
        """True when the operator named a Redis; then it must be reachable."""
        return bool(
            self.redis_url
            or {"redis_host", "redis_port", "redis_username", "redis_password", "redis_tls"}
            & self.model_fields_set
        )

    @property
    def redis_dsn(self) -> str:
        if self.redis_url:
            return self.redis_url
        user = quote(self.redis_username or "", safe="")
        password = self.redis_password.get_secret_value() if self.redis_password else None
        auth = f"{user}:{quote(password, safe='')}@" if password is not None else ""
        auth = auth or (f"{user}@" if user else "")
        scheme = "rediss" if self.redis_tls else "redis"
        return f"{scheme}://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"

    @property
    def allowed_origins(self) -> list[str]:
        """CORS and Socket.IO origins: CORS_ORIGINS, else `*` outside production and only
        the page's own origin in production (an empty list)."""
        if self.cors_origins is not None:
            return self.cors_origins
        return [] if self.is_production else ["*"]

    @property
    def socketio_dsn(self) -> str:
        """Socket.IO's Redis manager has no cluster mode: SOCKETIO_REDIS_URL, else REDIS_URL
        (on a cluster, its first node: a PUBLISH there reaches subscribers on every node)."""
        if self.socketio_redis_url:
            return self.socketio_redis_url
        first = self.redis_dsn.split(",")[0].strip()
        return first if self.redis_cluster else self.redis_dsn

    @property
    def redis_setting_name(self) -> str:
        return "REDIS_URL" if self.redis_url else "REDIS_HOST/REDIS_PORT"

    @property
    def session_ttl_seconds(self) -> float:
        return self.session_timeout / 1000.0

    @cached_property
    def escalation_patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        """Whole-word, case-insensitive pattern for each keyword or phrase."""
        return [
            (
                word,
                re.compile(
                    r"(?<!\w)" + r"\s+".join(map(re.escape, word.split())) + r"(?!\w)", re.I
                ),
            )
            for word in (k.lower() for k in self.escalation_keywords)
        ]

    @property
    def webhook_retry_delays(self) -> list[float]:
        """WEBHOOK_RETRY_SCHEDULE in seconds: the delay before each retry, in order."""
        return [parse_duration(item) for item in self.webhook_retry_schedule]

    @property
    def smtp_retry_delays(self) -> list[float]:
        return [parse_duration(item) for item in self.smtp_retry_schedule]

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and self.oncall_email)

    def provider_configured(self, name: str) -> bool:
        if name == "openai":
            return self.openai_api_key is not None or self.openai_base_url is not None
        if name == "gemini":
            return self.gemini_api_key is not None
        return name == "local"


class SettingsError(SystemExit):
    """Start-up stops: a variable has an invalid value."""


def _variable_name(loc: str) -> str:
    """The environment variable(s) behind a field, for error messages."""
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
        if loc == name or loc in choices:
            return "/".join(choices) if choices else name.upper()
    return loc.upper()


def load_settings(**overrides: Any) -> Settings:
    """Read settings once; turn a validation error into a message naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = _variable_name(str(err["loc"][0])) if err["loc"] else "?"
            lines.append(f"  {name}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("Invalid configuration:\n" + "\n".join(lines)) from None
