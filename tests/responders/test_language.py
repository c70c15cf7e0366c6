"""A question in another language: the model is told to answer in the customer's language
from the same knowledge (seen at the fake OpenAI server)."""

from tests.conftest import new_session


async def test_model_is_told_to_answer_in_the_customers_language(server_factory, openai_fake):
    openai_fake.fake.set(answer="Der Versand dauert 3-5 Werktage.", confidence=0.9)
    srv = await server_factory(openai_api_key="sk-test", openai_base_url=openai_fake.openai_url)
    async with srv.client() as api:
        sid = await new_session(api)
        body = (
            await api.post(
                "/api/v1/chat/message",
                json={"sessionId": sid, "message": "Wie lange dauert der Versand?"},
            )
        ).json()
        assert body["provider"] == "openai" and not body["needsEscalation"]
        turn = openai_fake.fake.requests[-1]["body"]["messages"][-1]["content"]
        assert "the customer writes in German; answer in German" in turn
        assert "although it is written in English" in turn
        assert "Standard shipping" in turn  # the same (English) knowledge, retrieved
