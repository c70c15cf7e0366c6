"""Configuration: the brief's variables, names and defaults; bad values stop start-up."""

import pytest

from services.config import Settings, SettingsError, load_settings


def test_defaults_follow_the_seed(monkeypatch):
    for name in ("PORT", "NODE_ENV", "APP_ENV", "ESCALATION_KEYWORDS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings(_env_file=None)
    assert s.port == 3000
    assert s.app_env == "development"
    assert s.escalation_keywords == [
        "urgent",
        "emergency",
        "complaint",
        "supervisor",
        "manager",
        "cancel",
        "refund",
    ]
    assert s.max_conversation_history == 10
    assert s.session_timeout == 1_800_000
    assert s.escalation_confidence_threshold == 0.5
    assert s.redis_host == "localhost" and s.redis_port == 6379
    assert not s.redis_explicit


def test_environment_variables_are_read_with_the_briefs_names(monkeypatch):
    monkeypatch.setenv("NODE_ENV", "production")
    monkeypatch.setenv("PORT", "3001")
    monkeypatch.setenv("ESCALATION_KEYWORDS", "lawyer, speak to a human ,refund")
    monkeypatch.setenv("REDIS_HOST", "redis.internal")
    monkeypatch.setenv("REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    s = Settings(_env_file=None)
    assert s.is_production and s.port == 3001
    assert s.escalation_keywords == ["lawyer", "speak to a human", "refund"]
    assert s.redis_explicit
    assert s.redis_dsn == "redis://:s3cret@redis.internal:6379/0"
    assert s.provider_configured("openai") and not s.provider_configured("gemini")


def test_app_env_wins_over_node_env(monkeypatch):
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("NODE_ENV", "production")
    assert Settings(_env_file=None).app_env == "test"


def test_empty_keys_count_as_unset(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "")
    monkeypatch.setenv("GEMINI_API_KEY", "  ")
    s = Settings(_env_file=None)
    assert s.openai_api_key is None and s.gemini_api_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "not-a-port"),
        ("SESSION_TIMEOUT", "-5"),
        ("AI_PROVIDER_ORDER", "openai,skynet"),
        ("ESCALATION_CONFIDENCE_THRESHOLD", "1.5"),
        ("NODE_ENV", "staging"),
    ],
)
def test_an_invalid_value_stops_start_up_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    assert name in str(err.value)


def test_escalation_keywords_match_whole_words_and_phrases():
    s = Settings(_env_file=None, escalation_keywords="cancel,speak to a human")
    patterns = dict(s.escalation_patterns)
    assert patterns["cancel"].search("Please CANCEL my order")
    assert not patterns["cancel"].search("what is your cancellation policy")
    assert patterns["speak to a human"].search("can I speak  to a HUMAN?")
