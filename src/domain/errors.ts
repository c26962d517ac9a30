// The one error vocabulary. Every failure the service reports carries one of these stable
// codes; src/http/problems.ts maps them to RFC 9457 problem responses and src/xmpp/errors.ts to
// RFC 6120 §8.3 stanza errors.

export const ERROR_CODES = [
  "validation-failed",
  "invalid-jid",
  "invalid-text",
  "invalid-cursor",
  "unauthorized",
  "forbidden",
  "account-not-found",
  "account-exists",
  "message-not-found",
  "message-failed",
  "session-not-found",
  "webhook-not-found",
  "webhook-target-forbidden",
  "too-many-webhooks",
  "room-not-joined",
  "room-not-found",
  "room-nick-conflict",
  "room-members-only",
  "room-banned",
  "room-password-required",
  "room-refused",
  "room-unavailable",
  "too-many-rooms",
  "blocked",
  "too-many-blocks",
  "too-many-contacts",
  "too-many-sessions",
  "not-subscribed",
  "not-found",
  "method-not-allowed",
  "idempotency-key-reused",
  "not-acceptable",
  "payload-too-large",
  "unsupported-media-type",
  "uri-too-long",
  "headers-too-large",
  "request-timeout",
  "rate-limited",
  "too-many-streams",
  // With every outbound stanza durable, a request is accepted for later delivery while the link is
  // down (API.md "Errors", "Every outbound stanza is durable"): answered only where the request
  // waits for an answer over the link, a room's to a join or nick change (src/services/room-joins.ts).
  "xmpp-unavailable",
  "database-unavailable",
  "not-implemented",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    /** Extra members for the problem document, e.g. the offending field. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = "AppError";
  }
}
