// Type-checked with `make lint` (tsc --noEmit): how a page uses the client, and that the
// declarations hold together.
import type { ChatJoinedEvent, MessageReceivedEvent, SupportBotClient } from "./supportbot-client";

export function chat(client: SupportBotClient, userId: string): void {
  client.on("chat-joined", (joined: ChatJoinedEvent) => {
    client.sendMessage({ sessionId: joined.sessionId, message: "Where is my order?", userId });
  });
  client.on("message-received", (reply: MessageReceivedEvent) => {
    if (reply.needsEscalation && reply.escalation) {
      console.log(reply.escalation.reasons.map((r) => r.rule).join(", "));
    }
  });
  client.on("error", (error) => console.warn(error.code, error.retryAfter ?? 0));
  client.joinChat({ userId, language: "de" });
  client.socket.connect();
}
