// GET /v1/conversations (API.md "Message features (1.1)"): one item per peer (bare JID) or room,
// newest activity first, with the latest message, the unread count and the read position.
import { listConversations } from "../db/conversations.js";
import type { Database } from "../db/client.js";
import { messageView, type MessageView } from "../domain/views.js";
import { pageOf, type Page } from "../domain/page.js";

export interface ConversationView {
  with: string;
  lastMessage: MessageView;
  unread: number;
  lastReadId: string | null;
  updatedAt: string;
}

export class Conversations {
  constructor(private readonly db: Database) {}

  async list(accountId: number, cursor: string | null, limit: number): Promise<Page<ConversationView>> {
    const { rows, cut } = await listConversations(this.db.prisma, accountId, cursor === null ? null : BigInt(cursor), limit + 1);
    const view = (r: (typeof rows)[number]): ConversationView => ({ with: r.peer, lastMessage: messageView(r.last), unread: r.unread, lastReadId: r.lastReadId, updatedAt: r.updatedAt.toISOString() });
    return pageOf(rows, limit, view, (r) => r.lastSeq, cut);
  }
}
