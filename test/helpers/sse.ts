// A real SSE client over fetch: parses frames as the HTML standard's EventSource does (id,
// event, data, retry, comments) and lets tests wait for events.
export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
  json: unknown;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retry: number | null = null;
  status = 0;
  headers: Headers | null = null;
  private waiters: (() => void)[] = [];
  private abort = new AbortController();
  private done: Promise<void> | null = null;
  closed = false;

  static async open(url: string, headers: Record<string, string>): Promise<SseClient> {
    const c = new SseClient();
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

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    let frame: { id: string | null; event: string; data: string[] } = { id: null, event: "message", data: [] };
    try {
      for await (const chunk of body) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, "");
          buf = buf.slice(nl + 1);
          if (line === "") {
            if (frame.data.length) {
              const data = frame.data.join("\n");
              let json: unknown = undefined;
              try {
                json = JSON.parse(data);
              } catch {
                /* not JSON */
              }
              this.events.push({ id: frame.id, event: frame.event, data, json });
            }
            frame = { id: null, event: "message", data: [] };
            this.waiters.splice(0).forEach((w) => w());
            continue;
          }
          if (line.startsWith(":")) {
            this.comments.push(line.slice(1).trim());
            this.waiters.splice(0).forEach((w) => w());
            continue;
          }
          const idx = line.indexOf(":");
          const field = idx < 0 ? line : line.slice(0, idx);
          const value = idx < 0 ? "" : line.slice(idx + 1).replace(/^ /, "");
          if (field === "id") frame.id = value;
          else if (field === "event") frame.event = value;
          else if (field === "data") frame.data.push(value);
          else if (field === "retry") this.retry = Number(value);
        }
      }
    } catch {
      /* aborted */
    } finally {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
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
