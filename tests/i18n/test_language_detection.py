"""Language detection on short customer messages (lingua, offline)."""

from services.language import LanguageDetector

SHORT = {
    "en": ["Where is my order?", "Can I pay with PayPal?", "How long does shipping take?"],
    "de": [
        "Wo ist meine Bestellung?",
        "Kann ich mit PayPal zahlen?",
        "Wie lange dauert der Versand?",
    ],
    "fr": ["Où est ma commande ?", "Puis-je payer avec PayPal ?", "Quels sont vos horaires ?"],
    "es": ["¿Dónde está mi pedido?", "¿Puedo pagar con PayPal?", "¿Puedo devolver un producto?"],
    "it": ["Dov'è il mio ordine?", "Posso pagare con PayPal?", "Quanto costa la spedizione?"],
    "pt": ["Onde está o meu pedido?", "Posso pagar com cartão?", "Quanto custa o envio?"],
    "nl": [
        "Waar is mijn bestelling?",
        "Kan ik met PayPal betalen?",
        "Hoe lang duurt de verzending?",
    ],
}


async def test_short_messages_in_seven_languages():
    detector = LanguageDetector()
    for language, messages in SHORT.items():
        for message in messages:
            assert await detector.detect(message) == language, message


async def test_too_short_or_ambiguous_gives_no_language():
    detector = LanguageDetector()
    for message in ("ok", "hi", "refund", "?!", "1234"):
        assert await detector.detect(message) is None, message


async def test_no_languages_is_no_detection():
    assert await LanguageDetector([]).detect("Wo ist meine Bestellung?") is None
