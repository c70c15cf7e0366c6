"""The message catalogues: every shipped language has every key with the same placeholders,
overrides per language, and the order in which a customer's language is chosen."""

import json
import string
from pathlib import Path

import pytest

from services.i18n import Catalogues, negotiate, parse_accept_language
from services.i18n.catalogue import BUNDLED, CatalogueError

SHIPPED = ("en", "de", "fr", "es")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_shipped_catalogue_has_the_same_keys_and_placeholders():
    catalogues = {lang: json.loads((BUNDLED / f"{lang}.json").read_text()) for lang in SHIPPED}
    assert sorted(p.stem for p in BUNDLED.glob("*.json")) == sorted(SHIPPED)
    english = catalogues["en"]
    for lang, catalogue in catalogues.items():
        assert set(catalogue) == set(english), (lang, set(english) ^ set(catalogue))
        for key, text in catalogue.items():
            assert text.strip(), (lang, key)
            assert placeholders(text) == placeholders(english[key]), (lang, key)
        for key in ("server.weekdays", "server.months"):
            assert len(catalogue[key].split(",")) == len(english[key].split(","))
    # the translations are translations, not copies
    assert catalogues["de"]["server.handoff"] != english["server.handoff"]


def test_text_fills_placeholders_and_falls_back_to_english():
    texts = Catalogues(
        {"en": {"a": "Hello {name}", "b": "Only English"}, "de": {"a": "Hallo {name}"}}
    )
    assert texts.text("de", "a", name="Ada") == "Hallo Ada"
    assert texts.text("de", "b") == "Only English"
    assert texts.text("pl", "a", name="Ada") == "Hello Ada"
    with pytest.raises(KeyError):
        texts.text("en", "missing")


def test_overrides_per_language_replace_and_add(tmp_path: Path):
    (tmp_path / "de.json").write_text(
        json.dumps({"server.handoff": "Gleich meldet sich jemand von Acme."}), encoding="utf-8"
    )
    (tmp_path / "it.json").write_text(json.dumps({"page.title": "Assistenza"}), encoding="utf-8")
    texts = Catalogues.load(tmp_path)
    assert texts.text("de", "server.handoff") == "Gleich meldet sich jemand von Acme."
    assert texts.text("de", "server.later").startswith("Unser Team")  # the rest stays
    assert "it" in texts.languages and texts.public("it")["page.title"] == "Assistenza"
    assert texts.public("it")["page.send"] == "Send"  # English for what it lacks
    (tmp_path / "german.json").write_text("{}", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"german\.json"):
        Catalogues.load(tmp_path)


def test_language_order_setting_then_browser_then_detected():
    shipped = frozenset(SHIPPED)
    header = "pt-BR,fr;q=0.8,de;q=0.9,*;q=0.1"
    assert parse_accept_language(header) == ["pt", "de", "fr"]
    assert negotiate(shipped, setting="es", accept_language=header, detected="en") == "es"
    assert negotiate(shipped, setting="pt", accept_language=header, detected="en") == "de"
    assert negotiate(shipped, accept_language="it", detected="fr") == "fr"
    assert negotiate(shipped, setting="de-CH") == "de"
    assert negotiate(shipped, accept_language="pl;q=0, en;q=0") is None
