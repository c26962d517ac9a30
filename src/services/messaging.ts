// Accepting outbound messages: the HTTP route hands a validated message here; it is written
// (batched with other requests into one statement) and, once committed, sent on the component
// link in the same batch. The 202 says "sent" when the stanza went out, "queued" when the link
// was down and the outbox will send it later.
import { Batcher } from "../db/batch.js";
import type { AcceptedMessage, Messages, NewOutbound } from "../db/messages.js";
import type { Outbox } from "../xmpp/outbox.js";

export interface Acceptance extends AcceptedMessage {
  reported: "queued" | "sent";
}

export class Messaging {
  private readonly writer: Batcher<NewOutbound, Acceptance>;

  constructor(messages: Messages, outbox: Outbox, onAccepted: (n: number) => void) {
    this.writer = new Batcher(async (items) => {
      const results = await messages.insertOutbound(items);
      const fresh = results.filter((r) => r.created);
      const sent = fresh.length > 0 && outbox.sendNow(fresh.map((r) => r.message));
      onAccepted(fresh.length);
      return results.map((r) => ({
        ...r,
        reported: r.created ? (sent ? "sent" : "queued") : r.status === "queued" ? "queued" : "sent",
      }));
    }, 1000, 3);
  }

  accept(m: NewOutbound): Promise<Acceptance> {
    return this.writer.push(m);
  }

  idle(): Promise<void> {
    return this.writer.idle();
  }
}
