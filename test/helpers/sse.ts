// A real SSE client over fetch: parses the stream with eventsource-parser (as the HTML standard's
// EventSource does: id, event, data, retry, comments) and lets tests wait for events. Every event
// is checked against the event catalogue; a mismatch is kept in `schemaErrors` and recorded for
// TestGateway.stop() to fail on.
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { checkEvent, recordMismatch } from "./event-schema.js";

export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
  json: unknown;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  /** Events that did not match their schema in the event catalogue (also recorded process-wide). */
  readonly schemaErrors: string[] = [];
  retry: number | null = null;
  status = 0;
  headers: Headers | null = null;
  private waiters: (() => void)[] = [];
  private abort = new AbortController();
  private done: Promise<void> | null = null;
  private url = "";
  closed = false;

  static async open(url: string, headers: Record<string, string>): Promise<SseClient> {
    const c = new SseClient();
    c.url = url;
    const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: c.abort.signal });
    c.status = res.status;
    c.headers = res.headers;
    if (res.status !== 200 || !res.body) {
      c.closed = true;
      await res.text().catch(() => undefined);
      return c;
    }
    c.done = c.read(res.body);
    return c;
  }

  private wake(): void {
    this.waiters.splice(0).forEach((w) => w());
  }

  private onEvent(m: EventSourceMessage): void {
    // EventSource semantics: no (or an empty) `event:` field means type "message".
    const event = m.event ?? "message";
    let json: unknown = undefined;
    try {
      json = JSON.parse(m.data);
    } catch {
      /* not JSON: the schema check says so */
    }
    const e: SseEvent = { id: m.id ?? null, event, data: m.data, json };
    this.events.push(e);
    const mismatch = e.id === null || !/^\d+$/.test(e.id) ? `event ${JSON.stringify(event)} has id ${JSON.stringify(e.id)}, not a sequence number` : checkEvent(event, json);
    if (mismatch) {
      this.schemaErrors.push(mismatch);
      const u = new URL(this.url);
      recordMismatch(`SSE ${u.pathname}${u.search} id ${e.id}`, mismatch);
    }
    this.wake();
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    const parser = createParser({
      onEvent: (m) => this.onEvent(m),
      onRetry: (ms) => {
        this.retry = ms;
        this.wake();
      },
      onComment: (comment) => {
        this.comments.push(comment);
        this.wake();
      },
    });
    try {
      for await (const chunk of body) parser.feed(decoder.decode(chunk, { stream: true }));
      // An event cut off before its blank line is not dispatched (HTML standard §9.2.6).
      parser.feed(decoder.decode());
    } catch {
      /* aborted */
    } finally {
      this.closed = true;
      this.wake();
    }
  }

  /** The id of the last event received (what a reconnecting EventSource sends as Last-Event-ID). */
  get lastEventId(): string | null {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]!.id !== null) return this.events[i]!.id;
    return null;
  }

  async waitFor(pred: (events: SseEvent[]) => boolean, timeoutMs = 10_000, what = "events"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      if (this.closed) throw new Error(`stream closed while waiting for ${what}; got ${this.events.length} events`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${this.events.length} events: ${this.events.map((e) => e.event).join(",")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

/**
 * An event stream's opening block, raw, up to its blank line (what an EventSource takes its retry
 * and last event ID from before any event), read from a request the caller may go on reading
 * (`reader`) and ends with `abort`.
 */
export async function streamOpening(url: string, headers: Record<string, string>): Promise<{ status: number; opening: string; reader: ReadableStreamDefaultReader<Uint8Array>; abort: () => void }> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: controller.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return { status: res.status, opening: text.slice(0, text.indexOf("\n\n") + 2), reader, abort: () => controller.abort() };
}
