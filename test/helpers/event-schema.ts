// Checks events as tests see them (SSE frames, JSON pages) against the event catalogue in
// src/domain/events.ts, and keeps a process-wide list of mismatches that TestGateway.stop()
// turns into a failure: an event the gateway emits that does not match its documented schema
// fails the test file that saw it.
import { Type } from "@sinclair/typebox";
import { FormatRegistry } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { EVENT_SCHEMAS, type EventType } from "../../src/domain/events.js";

// TypeBox knows no string formats by itself: the catalogue uses these two.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
if (!FormatRegistry.Has("uuid")) FormatRegistry.Set("uuid", (v) => UUID.test(v));
if (!FormatRegistry.Has("date-time")) FormatRegistry.Set("date-time", (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)));

const isEventType = (t: string): t is EventType => Object.prototype.hasOwnProperty.call(EVENT_SCHEMAS, t);

const show = (v: unknown) => {
  const s = v === undefined ? "undefined" : JSON.stringify(v);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
};

/** A description of the first way `data` differs from the catalogue's schema for `event`, or null. */
export function checkEvent(event: string, data: unknown): string | null {
  if (!isEventType(event)) return `unknown event type ${JSON.stringify(event)}`;
  const schema = EVENT_SCHEMAS[event];
  if (Value.Check(schema, data)) return null;
  const first = Value.Errors(schema, data).First();
  if (!first) return `${event}: data does not match its schema: ${show(data)}`;
  // A union reports "Expected union value"; its branches say why each failed.
  const detail = first.errors
    .map((it) => it.First())
    .filter((e) => e !== undefined)
    .map((e) => `${e.path || "/"}: ${e.message}`)
    .join("; ");
  return `${event}: data${first.path || ""}: ${first.message} (got ${show(first.value)})${detail ? ` [${detail}]` : ""}; data: ${show(data)}`;
}

/** The envelope of an item of the JSON view (EventItemSchema without the per-type data). */
const EventEnvelope = Type.Object(
  { id: Type.Integer(), event: Type.String(), data: Type.Unknown(), createdAt: Type.String({ format: "date-time" }) },
  { additionalProperties: false },
);

/** Checks one item of a JSON page `{id, event, data, createdAt}`: its envelope, then its data. */
export function checkEventItem(item: unknown): string | null {
  if (!Value.Check(EventEnvelope, item)) {
    const e = Value.Errors(EventEnvelope, item).First();
    return `event item${e?.path ?? ""}: ${e?.message ?? "does not match"} (got ${show(e?.value)}); item: ${show(item)}`;
  }
  return checkEvent(item.event, item.data);
}

/** Every mismatch seen in this process (node:test runs each test file in its own process). */
export const schemaMismatches: string[] = [];

export function recordMismatch(where: string, mismatch: string): void {
  schemaMismatches.push(`${where}: ${mismatch}`);
}

/** Throws, listing them, if any event seen so far did not match the catalogue; clears the list. */
export function assertNoSchemaMismatches(): void {
  if (schemaMismatches.length === 0) return;
  const list = schemaMismatches.splice(0);
  throw new Error(`${list.length} event(s) did not match the event catalogue (src/domain/events.ts):\n${list.map((m) => `  - ${m}`).join("\n")}`);
}
