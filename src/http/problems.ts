// Maps the error vocabulary (src/domain/errors.ts) onto RFC 9457 problem documents.
import type { ErrorCode } from "../domain/errors.js";

const STATUS: Record<ErrorCode, [number, string]> = {
  "validation-failed": [400, "Invalid request"],
  "invalid-jid": [400, "Invalid JID"],
  "invalid-text": [400, "Invalid text"],
  "invalid-cursor": [400, "Invalid cursor"],
  unauthorized: [401, "Unauthorized"],
  forbidden: [403, "Forbidden"],
  "account-not-found": [404, "Account not found"],
  "account-exists": [409, "Account already exists"],
  "message-not-found": [404, "Message not found"],
  "message-failed": [409, "Message failed"],
  "session-not-found": [404, "Session not found"],
  "webhook-not-found": [404, "Webhook not found"],
  "webhook-target-forbidden": [400, "Webhook target forbidden"],
  "too-many-webhooks": [409, "Too many webhooks"],
  "room-not-joined": [404, "Room not joined"],
  "room-not-found": [404, "Room not found"],
  "room-nick-conflict": [409, "Nickname in use"],
  "room-members-only": [403, "Members only"],
  "room-banned": [403, "Banned from the room"],
  "room-password-required": [403, "Password required"],
  "room-refused": [403, "Refused by the room"],
  "room-unavailable": [503, "Room unavailable"],
  "too-many-rooms": [409, "Too many rooms"],
  blocked: [400, "Blocked"],
  "too-many-blocks": [409, "Too many blocked JIDs"],
  "too-many-contacts": [409, "Too many contacts"],
  "too-many-sessions": [409, "Too many sessions"],
  "not-subscribed": [409, "Not subscribed"],
  "not-found": [404, "Not found"],
  "method-not-allowed": [405, "Method not allowed"],
  "idempotency-key-reused": [422, "Idempotency key reused with a different request"],
  "not-acceptable": [406, "Not acceptable"],
  "payload-too-large": [413, "Payload too large"],
  "unsupported-media-type": [415, "Unsupported media type"],
  "uri-too-long": [414, "URI too long"],
  "headers-too-large": [431, "Request header fields too large"],
  "request-timeout": [408, "Request timeout"],
  "rate-limited": [429, "Too many requests"],
  "too-many-streams": [429, "Too many event streams"],
  "xmpp-unavailable": [503, "XMPP link unavailable"],
  "database-unavailable": [503, "Database unavailable"],
  "not-implemented": [501, "Not implemented"],
  internal: [500, "Internal error"],
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  [extra: string]: unknown;
}

export function problem(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): Problem {
  const [status, title] = STATUS[code];
  return { type: `urn:balcony:problem:${code}`, title, status, detail, code, ...extra };
}
