// Views: how stored records look to API users. One definition each, used by every route and event.
import type { Static } from "@sinclair/typebox";
import type { MessageViewSchema, RosterItemView } from "./events.js";
import type { LangText } from "./message.js";
import { reactionsView, type Marker, type MessageExt } from "./message-features.js";
import type { ItemState } from "./subscription.js";

/** A roster item as stored (the subscription state plus the user's name and groups). */
export interface RosterRecord extends ItemState {
  jid: string;
  name: string | null;
  groups: string[];
  pendingInAt: Date | null;
  pendingStatus: string | null;
  ver: number;
}

/** RFC 6121 §2.1.2: the item as the API shows it; an absent row is an item with no subscription. */
export function rosterItemView(jid: string, row: RosterRecord | null): RosterItemView {
  return {
    jid,
    name: row?.name ?? null,
    groups: row?.groups ?? [],
    subscription: row?.subscription ?? "none",
    ask: row?.askOut ? "subscribe" : null,
    approved: row?.approved ?? false,
  };
}

/** A stored message, either direction. */
export interface MessageRecord {
  id: string;
  direction: string;
  from: string;
  to: string;
  type: string;
  body: unknown;
  subject: unknown;
  thread: string | null;
  lang: string | null;
  state: string | null;
  receipt: boolean;
  status: string;
  error: unknown;
  seq: bigint | number;
  createdAt: Date;
  updatedAt: Date;
  ext?: unknown;
  editedAt?: Date | null;
  retractedAt?: Date | null;
  reactions?: unknown;
  marker?: string | null;
}

/** A stored message as the API shows it: the catalogue's schema (history, GET /v1/messages/{id}, `message-update` events). */
export type MessageView = Static<typeof MessageViewSchema>;

/**
 * A stored status as API.md names it (queued|sent|delivered|failed). A group message not yet
 * reflected by its room (`written`) is still on its way; an inbound message (stored `received`)
 * has reached the account, so it reads `delivered` (its `direction` tells it apart).
 */
function statusView(status: string): MessageView["status"] {
  if (status === "written") return "queued";
  if (status === "received") return "delivered";
  return status as MessageView["status"];
}

export function messageView(r: MessageRecord): MessageView {
  const ext = (r.ext ?? null) as MessageExt | null;
  return {
    id: r.id,
    direction: r.direction as MessageView["direction"],
    from: r.from,
    to: r.to,
    type: r.type,
    body: r.body as LangText | null,
    subject: r.subject as LangText | null,
    thread: r.thread,
    lang: r.lang,
    state: r.state,
    receipt: r.receipt,
    status: statusView(r.status),
    ...(r.error ? { error: r.error } : {}),
    cursor: String(r.seq),
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    edited: r.editedAt ? r.editedAt.toISOString() : null,
    retracted: r.retractedAt ? r.retractedAt.toISOString() : null,
    reactions: reactionsView((r.reactions ?? null) as Record<string, string[]> | null),
    replyTo: ext?.replyTo ?? null,
    attachments: r.retractedAt ? [] : (ext?.attachments ?? []),
    marker: (r.marker ?? null) as Marker | null,
  };
}
