"""A client generated from the served spec (openapi-python-client, into a temporary
folder) drives one whole conversation: operationIds and schema names make a clean client."""

import importlib
import subprocess
import sys
from pathlib import Path


async def test_a_generated_client_holds_a_whole_conversation(server, tmp_path):
    async with server.client() as api:
        (tmp_path / "openapi.json").write_text((await api.get("/api/v1/openapi.json")).text)
    (tmp_path / "config.yaml").write_text(
        "package_name_override: supportbot_client\nproject_name_override: supportbot-client\n"
    )
    cli = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [
            str(cli),
            "generate",
            "--path",
            "openapi.json",
            "--config",
            "config.yaml",
            "--meta",
            "none",
            "--output-path",
            "supportbot_client",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # every schema and operation generated cleanly

    sys.path.insert(0, str(tmp_path))
    try:
        client_mod = importlib.import_module("supportbot_client")

        def op(tag, name):
            return importlib.import_module(f"supportbot_client.api.{tag}.{name}")

        models = importlib.import_module("supportbot_client.models")
        client = client_mod.Client(base_url=f"{server.url}/api/v1")

        created = await op("chat", "create_session").asyncio(
            client=client, body=models.CreateSessionRequest(user_id="gen-user")
        )
        assert isinstance(created, models.SessionCreated) and created.success

        reply = await op("chat", "send_message").asyncio(
            client=client,
            body=models.SendMessageRequest(
                session_id=created.session_id,
                message="How can I reset my password?",
                user_id="gen-user",
            ),
        )
        assert isinstance(reply, models.MessageReply)
        assert reply.provider == "local" and reply.response

        history = await op("chat", "get_history").asyncio(
            client=client, session_id=created.session_id
        )
        assert isinstance(history, models.HistoryResponse)
        assert [e.role for e in history.history] == ["user", "assistant"]

        missing = await op("chat", "get_history").asyncio_detailed(
            client=client, session_id="x" * 32
        )
        assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)

        status = await op("health", "get_health").asyncio(client=client)
        assert status.status == "healthy"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("supportbot_client")]:
            del sys.modules[name]
