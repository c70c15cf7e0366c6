"""Language detection on short customer messages (lingua, offline), in a worker process
that never outlives its server."""

import subprocess
import sys
import time
from pathlib import Path

from services.language import LanguageDetector

ROOT = Path(__file__).resolve().parents[2]

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


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be collected


def test_the_detection_worker_ends_with_its_server_even_after_a_sigkill():
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "from services.language import worker_pool\n"
            "print(worker_pool().submit(os.getpid).result(), flush=True)\n"
            "sys.stdin.read()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    worker = int(server.stdout.readline())
    assert running(worker)
    server.kill()  # no exit handler runs
    server.wait()
    server.stdin.close()
    server.stdout.close()
    deadline = time.monotonic() + 30
    while running(worker):
        assert time.monotonic() < deadline, f"the detection worker {worker} outlived its server"
        time.sleep(0.1)
