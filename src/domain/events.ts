// The event catalogue: every event an account's log can hold, one TypeBox schema per type. The
// same schemas type the producers (services build events only through `event()`), document the
// SSE and JSON views in OpenAPI (a oneOf discriminated by `event`), and let tests check that
// whatever the gateway emits matches what it documents.
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { CHAT_STATES } from "./message.js";
import { XML_TEXT_PATTERN } from "./text.js";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** A union of string literals, typed as exactly those strings. */
const Literals = <const T extends readonly string[]>(values: T) => Type.Unsafe<T[number]>(Type.Union(values.map((v) => Type.Literal(v))));
const strict = { additionalProperties: false } as const;

/** Text, or texts by xml:lang (RFC 6121 §5.2.3). */
export const LangTextSchema = Type.Union([Type.String(), Type.Record(Type.String(), Type.String())], { title: "LangText" });

/** RFC 6121 §2.1.2 roster item, as the API shows it. */
export const RosterItemSchema = Type.Object(
  {
    jid: Type.String(),
    name: Nullable(Type.String()),
    groups: Type.Array(Type.String()),
    subscription: Literals(["none", "to", "from", "both"] as const),
    ask: Nullable(Type.Literal("subscribe")),
    approved: Type.Boolean(),
  },
  { ...strict, title: "RosterItem" },
);
export type RosterItemView = Static<typeof RosterItemSchema>;

const StanzaError = Type.Object({ type: Type.String(), condition: Type.String(), text: Type.Optional(Type.String()) }, strict);
export type StanzaErrorView = Static<typeof StanzaError>;

/** XEP-0066 OOB URL, with XEP-0446 metadata (sent as XEP-0447 file sharing when any is given). */
export const AttachmentSchema = Type.Object(
  {
    url: Type.String({ pattern: "^[Hh][Tt][Tt][Pp][Ss]?://[\\x21-\\x7E]+$", maxLength: 2048, description: "http(s) URL of the file" }),
    mediaType: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}$", description: "e.g. image/png" })),
    name: Type.Optional(Type.String({ pattern: XML_TEXT_PATTERN, maxLength: 255, description: "File name" })),
    size: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 53 - 1, description: "Size in bytes" })),
    description: Type.Optional(Type.String({ pattern: XML_TEXT_PATTERN, maxLength: 1024 })),
  },
  { additionalProperties: false, title: "Attachment" },
);

const AnyLangText = Type.Union([Type.String(), Type.Record(Type.String(), Type.String())]);

/** A stored message in either direction, as history, GET /v1/messages/{id} and `message-update` events show it. */
export const MessageViewSchema = Type.Object({
  id: Type.String(),
  direction: Type.Union([Type.Literal("out"), Type.Literal("in")]),
  from: Type.String(),
  to: Type.String(),
  type: Type.String(),
  body: Type.Union([AnyLangText, Type.Null()]),
  subject: Type.Union([AnyLangText, Type.Null()]),
  thread: Type.Union([Type.String(), Type.Null()]),
  lang: Type.Union([Type.String(), Type.Null()]),
  state: Type.Union([Type.String(), Type.Null()]),
  receipt: Type.Boolean(),
  status: Type.Union([Type.Literal("queued"), Type.Literal("sent"), Type.Literal("delivered"), Type.Literal("failed")], {
    description: "API.md's statuses; an inbound message (direction `in`) reads delivered: it reached the account",
  }),
  error: Type.Optional(Type.Unknown()),
  cursor: Type.String(),
  createdAt: Type.String({ format: "date-time" }),
  updatedAt: Type.String({ format: "date-time" }),
  edited: Type.Union([Type.String({ format: "date-time" }), Type.Null()], { description: "Last correction (XEP-0308)" }),
  retracted: Type.Union([Type.String({ format: "date-time" }), Type.Null()], { description: "Retracted (XEP-0424): the body is gone, the message stays" }),
  reactions: Type.Record(Type.String(), Type.Array(Type.String()), { description: "XEP-0444: emoji -> bare JIDs that reacted with it (in a room, an occupant whose real JID the room does not give is named by its occupant JID, room@service/nick)" }),
  replyTo: Type.Union([Type.Object({ id: Type.Union([Type.String(), Type.Null()]) }), Type.Null()], { description: "XEP-0461: the message replied to" }),
  attachments: Type.Array(AttachmentSchema),
  marker: Type.Union([Type.Literal("received"), Type.Literal("displayed"), Type.Literal("acknowledged"), Type.Null()], { description: "XEP-0333: best marker from the peer (in a room: from any other occupant)" }),
}, { ...strict, title: "Message" });

export const EVENT_SCHEMAS = {
  /** An inbound message (RFC 6121 §5), chat state (XEP-0085) or both. */
  message: Type.Object(
    {
      id: Type.String({ format: "uuid" }),
      from: Type.String(),
      to: Type.String(),
      type: Literals(["chat", "normal", "headline", "groupchat"] as const),
      body: Nullable(LangTextSchema),
      subject: Nullable(LangTextSchema),
      thread: Nullable(Type.String()),
      lang: Nullable(Type.String()),
      state: Nullable(Literals(CHAT_STATES)),
      receiptRequested: Type.Boolean({ description: "The sender asked for a XEP-0184 receipt (sent once a stream has the event)" }),
      stanzaId: Nullable(Type.String()),
      createdAt: Type.String({ format: "date-time" }),
      room: Type.Optional(Type.String({ description: "XEP-0045: the room (bare JID) of a group message, or of a private message from an occupant" })),
      nick: Type.Optional(Type.String({ description: "XEP-0045: the occupant's nick in that room" })),
      own: Type.Optional(Type.Boolean({ description: "The room's reflection of the account's own group message" })),
      delay: Type.Optional(Type.String({ description: "XEP-0203: when the message was first sent (room history)" })),
      replyTo: Type.Optional(Type.Object({ id: Nullable(Type.String()) }, { description: "XEP-0461: the message it replies to (null: one not stored here)" })),
      attachments: Type.Optional(Type.Array(AttachmentSchema)),
    },
    strict,
  ),
  /**
   * Presence (RFC 6121 §4) of a contact the account is subscribed to, or sent to it by anyone else
   * while a session is available (§4.6.4), or of another of the account's own sessions (`self`,
   * to each available session: §4.2.2, §4.4.2, §4.5.2, the home server sends a resource's presence
   * to the user's available resources).
   */
  presence: Type.Object(
    {
      jid: Type.String({ description: "The contact's bare JID (the account's own with `self`)" }),
      from: Type.String(),
      resource: Nullable(Type.String()),
      type: Literals(["available", "unavailable"] as const),
      show: Nullable(Literals(["away", "chat", "dnd", "xa"] as const)),
      status: Nullable(LangTextSchema),
      priority: Type.Integer({ minimum: -128, maximum: 127 }),
      to: Type.Optional(Type.String({ description: "Present when the presence was directed to one session" })),
      self: Type.Optional(Type.Literal(true, { description: "The presence of another of the account's own sessions (PUT /v1/presence, a session ended or expired), to each available session (`to`)" })),
    },
    strict,
  ),
  /** An inbound subscription stanza delivered to the account (RFC 6121 §3, Appendix A.3). */
  subscription: Type.Object(
    { jid: Type.String(), type: Literals(["subscribe", "subscribed", "unsubscribe", "unsubscribed"] as const), status: Type.Optional(Type.String()) },
    strict,
  ),
  /** A roster push (RFC 6121 §2.1.6): the item as it is now, or its removal. */
  roster: Type.Union([
    Type.Object({ item: RosterItemSchema, ver: Type.String() }, strict),
    Type.Object({ jid: Type.String(), removed: Type.Literal(true), ver: Type.String() }, strict),
  ]),
  /** XEP-0184: the recipient confirmed one of the account's messages. */
  receipt: Type.Object({ id: Type.String({ format: "uuid" }), from: Type.String(), status: Type.Literal("delivered") }, strict),
  /** A stored message changed (API.md "Message features"): corrected, retracted, reacted to, marked. The message as it is now. */
  "message-update": MessageViewSchema,
  /** An outbound message's status changed (an error stanza came back, RFC 6120 §8.3). */
  "message-status": Type.Object({ id: Type.String({ format: "uuid" }), status: Type.Literal("failed"), error: StanzaError }, strict),
  /** XEP-0045: something happened in a room the account joined, or an invitation to one. */
  room: Type.Object(
    {
      room: Type.String({ description: "The room's bare JID" }),
      kind: Literals(["joined", "join-failed", "occupant-joined", "occupant-left", "nick-changed", "role-changed", "subject", "kicked", "banned", "removed", "destroyed", "invited", "invitation-declined", "subject-failed", "invitation-failed"] as const),
      nick: Type.Optional(Type.String()),
      newNick: Type.Optional(Type.String()),
      role: Type.Optional(Type.String()),
      affiliation: Type.Optional(Type.String()),
      jid: Type.Optional(Nullable(Type.String())),
      self: Type.Optional(Type.Boolean({ description: "It is about the account itself" })),
      subject: Type.Optional(Nullable(LangTextSchema)),
      error: Type.Optional(StanzaError),
      from: Type.Optional(Type.String({ description: "Who invited the account (invited), or who declined its invitation (invitation-declined)" })),
      reason: Type.Optional(Nullable(Type.String({ description: "Why the account was invited, why the occupant was kicked, banned or removed, or why the room was destroyed (XEP-0045 <reason/>)" }))),
      alternate: Type.Optional(
        Type.String({ description: "destroyed: the room its owner named instead (XEP-0045 §10.9 <destroy jid/>); join-failed with error gone: where the room's service says it went (RFC 6120 §8.3.3.5)" }),
      ),
      retryAt: Type.Optional(
        Type.String({ format: "date-time", description: "join-failed: the gateway's own rejoin was refused for now (the room's service is unavailable); it tries again at this time, and again later until the room answers" }),
      ),
      actor: Type.Optional(Type.String({ description: "The nick of who kicked, banned or removed the occupant, when the room names them (XEP-0045 <actor nick/>)" })),
      password: Type.Optional(Nullable(Type.String())),
      via: Type.Optional(Literals(["mediated", "direct"] as const)),
    },
    strict,
  ),
  /** The cursor was older than the retained log: what came before `from` is gone. */
  resync: Type.Object({ reason: Type.String(), from: Type.Integer({ minimum: 0 }) }, strict),
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;
export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as EventType[];
export type EventData<T extends EventType> = Static<(typeof EVENT_SCHEMAS)[T]>;

/** An event for an account's log, typed by its catalogue entry. */
export type DomainEvent = { [T in EventType]: { type: T; data: EventData<T> } }[EventType];

/** The only way events are made: the type checker holds every producer to the catalogue. */
export function event<T extends EventType>(type: T, data: EventData<T>): { type: T; data: EventData<T> } {
  return { type, data };
}

/** The roster event for an item that changed: the item, or its removal. */
export function rosterEvent(jid: string, item: RosterItemView | null, ver: number): DomainEvent {
  return event("roster", item ? { item, ver: String(ver) } : { jid, removed: true, ver: String(ver) });
}

/**
 * One item of the event log as the JSON view and the SSE stream show it (`id` is the sequence
 * number; SSE puts `event` and `data` on their own lines). A oneOf discriminated by `event`.
 */
export const EventItemSchema = Type.Unsafe<{ id: number; event: EventType; data: unknown; createdAt: string }>({
  $id: "Event",
  title: "Event",
  oneOf: EVENT_TYPES.map((t) =>
    Type.Object({ id: Type.Integer(), event: Type.Literal(t), data: EVENT_SCHEMAS[t], createdAt: Type.String({ format: "date-time" }) }, { ...strict, title: `${t} event` }),
  ),
  discriminator: { propertyName: "event" },
});
