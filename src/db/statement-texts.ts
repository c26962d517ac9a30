// Statement texts built once per shape. The hot paths' statements (src/db/inbound-writes.ts,
// src/db/events.ts, src/db/messages.ts) are put together from parts whose text depends only on
// their shape: one row or many, whether senders are checked, where their parameters start. The
// values change with every call; the text need not. Built anew for every message, the text was
// a seventh of what the inbound hot path allocated at 500 messages a second (60-61 KB a message
// before, 52 after), and the prepared statement's lookup (src/db/client.ts queryConfig) flattened
// and hashed all of it again; a cached string keeps its hash.

/** Texts by a key naming their shape; the keys come from a fixed few shapes, so it stays small. */
export class StatementTexts {
  private readonly texts = new Map<string, string>();

  /** The text for `key`, built by `build` the first time only. */
  get(key: string, build: () => string): string {
    let text = this.texts.get(key);
    if (text === undefined) this.texts.set(key, (text = build()));
    return text;
  }
}
