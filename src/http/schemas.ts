// TypeBox schemas: the same objects validate requests (Ajv) and produce the OpenAPI document.
import { Type, type Static, type TSchema, type TString } from "@sinclair/typebox";
import { AppError, ERROR_CODES, type ErrorCode } from "../domain/errors.js";
import { CHAT_STATES, MESSAGE_TYPES } from "../domain/message.js";
import { PAGE_BYTES } from "../domain/page.js";
import { LANG_PATTERN, XML_TEXT_PATTERN } from "../domain/text.js";
import { DISTINCT_LANGUAGES } from "./validation.js";


export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    // An enum, so that a typed client narrows it (openapi/schema.d.ts); the list is src/domain/errors.ts's.
    code: Type.Unsafe<ErrorCode>({ type: "string", enum: [...ERROR_CODES], description: "Stable machine-readable error code" }),
  },
  { $id: "Problem", additionalProperties: true, description: "RFC 9457 problem details" },
);

/** Error responses as they go out: RFC 9457 problem documents, under their own media type. */
export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, { description: "Problem details (RFC 9457)", content: { "application/problem+json": { schema: Type.Ref(Problem) } } }]));

const Jid = (description: string) => Type.String({ maxLength: 3071, description });
const Cursor = Type.String({ pattern: "^[0-9]{1,18}$", description: "Opaque cursor from a previous page" });

/** Text for XML character data; `minLength` 1 where an empty text would say nothing (a message's body). */
export function xmlText(maxLength: number, description?: string, minLength = 0): TString {
  return Type.String({ pattern: XML_TEXT_PATTERN, ...(minLength ? { minLength } : {}), maxLength, ...(description ? { description } : {}) });
}

/**
 * A text, or the same text in several languages keyed by language tag (RFC 6121 §5.2.3), each
 * language once: keys that differ only in case name one language (src/http/validation.ts).
 */
export function langText(maxLength: number, description: string, minLength = 0): TSchema {
  const map = { minProperties: 1, maxProperties: 16, additionalProperties: false, [DISTINCT_LANGUAGES]: true };
  return Type.Union(
    // additionalProperties: false, or keys outside the pattern would take any value at all.
    [xmlText(maxLength, undefined, minLength), Type.Record(Type.String({ pattern: LANG_PATTERN }), xmlText(maxLength, undefined, minLength), map)],
    { description },
  );
}

const MessageId = (description: string) => Type.String({ format: "uuid", description });

export function sendMessageBody(maxChars: number) {
  return Type.Object(
    {
      to: Jid("Recipient JID (RFC 7622), bare or full. One whose localpart stringprep folds (RFC 6122: `ß` to `ss`, as Prosody and ejabberd do) is 400 invalid-jid naming their spelling in `jid`"),
      type: Type.Optional(Type.Union(MESSAGE_TYPES.map((t) => Type.Literal(t)), { default: "chat" })),
      // API.md: a message carries at least one of body, subject, state; an empty text is none of
      // them (it would go out as an empty <body/>), so each text has at least one character.
      body: Type.Optional(langText(maxChars, "Message body, or bodies by language (not empty)", 1)),
      subject: Type.Optional(langText(1024, "Subject, or subjects by language (not empty)", 1)),
      // RFC 6121 §5.2.5: the thread id is opaque character data, not a token.
      thread: Type.Optional(xmlText(256, "Thread id (RFC 6121 §5.2.5): any text of 1-256 characters", 1)),
      lang: Type.Optional(Type.String({ pattern: LANG_PATTERN, description: "xml:lang of the message" })),
      receipt: Type.Optional(Type.Boolean({ description: "Request a XEP-0184 delivery receipt" })),
      state: Type.Optional(Type.Union(CHAT_STATES.map((s) => Type.Literal(s)), { description: "XEP-0085 chat state" })),
      replace: Type.Optional(MessageId("Correct this earlier message of the account's in the same conversation (XEP-0308): the request carries to, body, lang and type (the original's) only, anything else is 400; in a batch, corrections are applied after its new messages are written, in order")),
      reply: Type.Optional(Type.Object({ id: MessageId("The message replied to, of the same conversation") }, { additionalProperties: false, description: "XEP-0461 reply, with a fallback quote; the body must then be one text, not a language map (400 validation-failed)" })),
      attachments: Type.Optional(Type.Array(AttachmentSchema, { minItems: 1, maxItems: 10 })),
      markable: Type.Optional(Type.Boolean({ description: "Ask for XEP-0333 markers (default: true for chat)" })),
    },
    { additionalProperties: false },
  );
}
export type SendMessageBody = Static<ReturnType<typeof sendMessageBody>>;


export const IdempotencyHeaders = Type.Object({
  "idempotency-key": Type.Optional(Type.String({ pattern: "^[\\x21-\\x7E]{1,255}$", description: "Retry key: the same key and payload within 24 h returns the first response" })),
  "balcony-resource": Type.Optional(Type.String({ minLength: 1, maxLength: 1023, pattern: XML_TEXT_PATTERN })),
});

/**
 * The Balcony-Resource request header where a route takes it besides POST /v1/messages: documented
 * only (the route checks it as a session's resourcepart, as it does ?resource=).
 */
export const SessionHeader = Type.Object({
  "balcony-resource": Type.Optional(Type.String({ description: "The calling session (a resourcepart, percent-encoded UTF-8 as a stream's Balcony-Resource answers it; a value that is no percent-encoding is taken as sent): overrides the token's resource claim; ?resource= overrides it" })),
});

export const Accepted = Type.Object({
  id: Type.String({ format: "uuid" }),
  status: Type.Union([Type.Literal("queued"), Type.Literal("sent")]),
  createdAt: Type.String({ format: "date-time" }),
});

export { AttachmentSchema, MessageViewSchema as MessageView } from "../domain/events.js";
import { AttachmentSchema } from "../domain/events.js";

export const HistoryQuery = Type.Object({
  with: Jid("The other party's bare JID"),
  before: Type.Optional(Type.String({ pattern: Cursor.pattern, description: "Only messages older than this cursor (a message's `cursor`, or a nextCursor)" })),
  after: Type.Optional(Type.String({ pattern: Cursor.pattern, description: "Only messages newer than this cursor: the page is the ones right after it" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
});

export const EventsQuery = Type.Object({
  // No pattern here: a bad cursor is 400 invalid-cursor from parseCursor (src/services/events.ts),
  // as a bad Last-Event-ID is, not validation-failed from the schema.
  since: Type.Optional(Type.String({ description: "Replay events after this id (an event's id or a nextSince: 1 to 18 digits); anything else is 400 invalid-cursor" })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: `At most this many events, and ${PAGE_BYTES / 1024 / 1024} MiB of their data (but always the first event): a page may hold fewer while more follow` }),
  ),
  resource: Type.Optional(Type.String({ minLength: 1, maxLength: 1023, pattern: XML_TEXT_PATTERN, description: "Session (resource) of this stream" })),
  ticket: Type.Optional(Type.String({ maxLength: 100, description: "A stream ticket (POST /v1/events/tickets) in place of the Authorization header, for EventSource: the SSE view only (the JSON view with a ticket is 401)" })),
});

export const AccountView = Type.Object({ jid: Type.String(), createdAt: Type.String({ format: "date-time" }) });
export const PageQuery = Type.Object({
  cursor: Type.Optional(Cursor),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
});
/** Bounded here; whether it is a localpart (empty, too many octets, a forbidden character) is RFC 7622's question: 400 invalid-jid. */
export const Localpart = Type.String({ maxLength: 3071, description: "Account localpart (RFC 7622 §3.3)" });

/**
 * A validated page size. Ajv (query coercion) turns "1e309" into Infinity and lets it through
 * `integer` and `maximum`, so the bound is enforced again where the value is used.
 */
export function pageLimit(value: number | undefined, fallback: number, max: number, field = "querystring.limit"): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new AppError("validation-failed", `${field} must be an integer from 1 to ${max}`, { field });
  return value;
}

export const MAX_BATCH = 1000;

/** One message of POST /v1/messages/batch: a message as for POST /v1/messages, and its own retry key. */
export function batchItem(maxChars: number) {
  const m = sendMessageBody(maxChars);
  return Type.Object(
    { ...m.properties, idempotencyKey: Type.Optional(Type.String({ pattern: "^[\\x21-\\x7E]{1,255}$", description: "This message's retry key (as the Idempotency-Key header)" })) },
    { additionalProperties: false },
  );
}

export function batchBody(maxChars: number) {
  return Type.Object({ messages: Type.Array(batchItem(maxChars), { minItems: 1, maxItems: MAX_BATCH }) }, { additionalProperties: false });
}

/** What Fastify checks of a batch before the route: the envelope. Each message is checked on its own, so one bad message refuses only itself. */
export const BatchEnvelope = Type.Object({ messages: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_BATCH }) }, { additionalProperties: false });

export const BatchResults = Type.Object({
  results: Type.Array(
    Type.Union([
      Type.Object({ ...Accepted.properties, replayed: Type.Optional(Type.Boolean({ description: "An idempotent retry: the first answer, nothing sent again" })) }),
      Type.Ref(Problem, { description: "This message was refused (the others are not affected)" }),
    ]),
    { description: "One result per message, in order" },
  ),
});
