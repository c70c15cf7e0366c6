// Types of the browser client (supportbot-client.js) for the customers' Socket.IO events and
// the REST calls the chat page and the widget use. Written from openapi/schemas/events.yaml
// (client -> server) and server-events.yaml (server -> client); tests/test_sdk.py checks the
// event names and the client events' properties against the spec.

export type ConversationStatus = "active" | "escalated" | "assigned" | "resolved";

export interface HistoryEntry {
  id: string;
  role: "user" | "assistant" | "agent" | "system" | "note";
  content: string;
  timestamp: string;
  language?: string;
  userId?: string;
  agentId?: string;
  agentName?: string;
  event?: string;
  [extra: string]: unknown;
}

export interface EscalationReason {
  rule: string;
  detail: string;
}

export interface Source {
  id: string;
  title: string;
  score: number;
  url?: string;
}

// --- client -> server (events.yaml) ---------------------------------------------------------
export interface JoinChatEvent {
  userId?: string;
  sessionId?: string;
  metadata?: Record<string, unknown>;
  language?: string;
}
export interface SendMessageEvent {
  sessionId: string;
  message: string;
  userId?: string;
}
export interface TypingEvent {
  sessionId: string;
  isTyping: boolean;
}
export interface RateEvent {
  sessionId: string;
  rating: 1 | 2 | 3 | 4 | 5;
  comment?: string;
}
export interface LeaveContactEvent {
  sessionId: string;
  email: string;
}
export interface IdentifyEvent {
  sessionId: string;
  userId: string;
  name?: string;
  email?: string;
  signature?: string;
}
export interface JoinAgentsEvent {
  apiKey: string;
}

export interface ClientEvents {
  "join-chat": JoinChatEvent;
  "send-message": SendMessageEvent;
  typing: TypingEvent;
  rate: RateEvent;
  "leave-contact": LeaveContactEvent;
  identify: IdentifyEvent;
  "join-agents": JoinAgentsEvent;
}

// --- server -> client (server-events.yaml) --------------------------------------------------
export interface ChatJoinedEvent {
  sessionId: string;
  userId: string;
  createdAt: string;
  expiresAt: string;
  status: ConversationStatus;
  history: HistoryEntry[];
}
export interface MessageReceivedEvent {
  sessionId: string;
  messageId: string;
  message: string;
  timestamp: string;
  isBot: boolean;
  sender?: "bot" | "agent" | "customer";
  needsEscalation?: boolean;
  confidence?: number;
  provider?: string;
  sources?: Source[];
  escalation?: { reasons: EscalationReason[] };
  agentName?: string;
  notice?: boolean;
}
export interface MessageChunkEvent {
  sessionId: string;
  messageId: string;
  delta: string;
}
export interface MessageResetEvent {
  sessionId: string;
  messageId: string;
}
export interface TypingNotice {
  sessionId: string;
  isTyping: boolean;
  sender?: "bot" | "agent";
  agentName?: string;
}
export interface EscalationNeededEvent {
  sessionId: string;
  reasons: EscalationReason[];
  [extra: string]: unknown;
}
export interface AgentJoinedEvent {
  sessionId: string;
  agentName?: string;
  [extra: string]: unknown;
}
export interface CustomerConversationUpdate {
  sessionId: string;
  status: ConversationStatus;
  event?: string;
  agentName?: string;
  queuePosition?: number | null;
}
export interface CsatRequestEvent {
  sessionId: string;
  episode?: number;
}
export interface RatedEvent {
  sessionId: string;
  rating: number;
  [extra: string]: unknown;
}
export interface ContactRequestedEvent {
  sessionId: string;
  message: string;
  episode?: number;
  nextOpening?: string;
}
export interface ContactSavedEvent {
  sessionId: string;
  ticketId: string;
  created: boolean;
}
export interface IdentifiedEvent {
  sessionId: string;
  userId: string;
  name?: string;
  email?: string;
  verified: boolean;
}
export interface AgentsJoinedEvent {
  room: string;
}
export interface ErrorEvent {
  message: string;
  code: string;
  retryAfter?: number;
}

export interface ServerEvents {
  "chat-joined": ChatJoinedEvent;
  typing: TypingNotice;
  "message-chunk": MessageChunkEvent;
  "message-reset": MessageResetEvent;
  "message-received": MessageReceivedEvent;
  "escalation-needed": EscalationNeededEvent;
  "agent-joined": AgentJoinedEvent;
  "conversation-updated": CustomerConversationUpdate;
  "csat-request": CsatRequestEvent;
  rated: RatedEvent;
  "contact-requested": ContactRequestedEvent;
  "contact-saved": ContactSavedEvent;
  identified: IdentifiedEvent;
  "agents-joined": AgentsJoinedEvent;
  error: ErrorEvent;
}

// --- REST -------------------------------------------------------------------------------
export interface PageMessages {
  language: string;
  negotiated: boolean;
  languages: string[];
  messages: Record<string, string>;
}
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
}

/** The part of a Socket.IO client socket the SDK uses (socket.io-client's Socket fits). */
export interface SocketLike {
  emit(event: string, payload: unknown): unknown;
  on(event: string, listener: (payload: never) => void): unknown;
  off(event: string, listener?: (payload: never) => void): unknown;
  connect(): unknown;
  disconnect(): unknown;
  readonly connected: boolean;
}

export interface ClientOptions {
  /** The support site, e.g. "https://support.example.com"; default: this page's origin. */
  baseUrl?: string;
  /** A connected or connectable socket; default: window.io(baseUrl, {transports: [...]}). */
  socket?: SocketLike;
}

export declare const CLIENT_EVENTS: ReadonlyArray<keyof ClientEvents>;
export declare const SERVER_EVENTS: ReadonlyArray<keyof ServerEvents>;

export declare class SupportBotClient {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  readonly socket: SocketLike;
  emit<E extends keyof ClientEvents>(event: E, payload: ClientEvents[E]): void;
  on<E extends keyof ServerEvents>(event: E, listener: (payload: ServerEvents[E]) => void): () => void;
  joinChat(payload: JoinChatEvent): void;
  sendMessage(payload: SendMessageEvent): void;
  typing(payload: TypingEvent): void;
  rate(payload: RateEvent): void;
  leaveContact(payload: LeaveContactEvent): void;
  identify(payload: IdentifyEvent): void;
  /** GET /api/v1/i18n/messages: the labels in `language` (else the browser's). */
  messages(language?: string): Promise<PageMessages>;
  /** POST /api/v1/chat/session/{id}/rating (when the socket is down). */
  rateOverRest(sessionId: string, rating: number, comment?: string): Promise<Record<string, unknown>>;
  /** POST /api/v1/chat/session/{id}/contact (when the socket is down). */
  contactOverRest(sessionId: string, email: string): Promise<Record<string, unknown>>;
  /** GET /api/v1/health (the public view). */
  health(): Promise<Record<string, unknown>>;
}

declare global {
  interface Window {
    SupportBotClient?: typeof SupportBotClient & {
      CLIENT_EVENTS: typeof CLIENT_EVENTS;
      SERVER_EVENTS: typeof SERVER_EVENTS;
    };
  }
}
