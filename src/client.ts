// A typed client for Balcony's HTTP API: openapi-fetch typed with the paths of
// openapi/schema.d.ts (generated from openapi/openapi.json by `npm run openapi`), plus `events()`,
// the account's SSE stream as an async iterator of typed events.
//
//   const balcony = createBalconyClient({ baseUrl: "http://127.0.0.1:8080", token });
//   const { data, error } = await balcony.POST("/v1/messages", { body: { to: "juliet@localhost", body: "Hi" } });
//   for await (const e of balcony.events()) if (e.event === "message") console.log(e.data.from, e.data.body);
import createClient, { type Client } from "openapi-fetch";
import { EventSourceParserStream } from "eventsource-parser/stream";
import type { components, paths } from "../openapi/schema.js";

export type { components, paths };

/** An item of the event log (the JSON view of GET /v1/events): one of the documented event types. */
export type EventItem = components["schemas"]["Event"];
export type EventType = EventItem["event"];
/** An event as the SSE stream carries it: `id:`, `event:` and `data:` (the log item without createdAt). */
export type StreamEvent = { [K in EventType]: Omit<Extract<EventItem, { event: K }>, "createdAt"> }[EventType];

export interface BalconyClientOptions {
  /** The gateway's root URL, e.g. "http://127.0.0.1:8080" (a path prefix is kept). */
  baseUrl: string;
  /** The account's JWT, sent as `Authorization: Bearer` on every request. */
  token: string;
}

export interface EventsOptions {
  /** Stops the stream (the iterator then ends). Breaking out of `for await` stops it as well. */
  signal?: AbortSignal;
  /** The session (resource) of this stream. */
  resource?: string;
}

export type BalconyClient = Client<paths> & {
  /**
   * The account's events from GET /v1/events (SSE), after event `since` when given (otherwise
   * where the session left off). Ends when the server closes the stream: to resume, call again
   * with the last event's id. Rejects on a non-200 answer with the problem's detail.
   */
  events(since?: number | string, options?: EventsOptions): AsyncGenerator<StreamEvent, void, undefined>;
};

export function createBalconyClient({ baseUrl, token }: BalconyClientOptions): BalconyClient {
  const root = baseUrl.replace(/\/+$/, "");
  const authorization = `Bearer ${token}`;
  const client = createClient<paths>({ baseUrl: root, headers: { authorization } });

  async function* events(since?: number | string, options: EventsOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    const url = new URL(`${root}/v1/events`);
    if (since !== undefined) url.searchParams.set("since", String(since));
    if (options.resource !== undefined) url.searchParams.set("resource", options.resource);
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const res = await fetch(url, { headers: { accept: "text/event-stream", authorization }, signal: abort.signal });
      if (res.status !== 200 || !res.body) {
        const text = await res.text().catch(() => "");
        let detail = text;
        try {
          detail = (JSON.parse(text) as { detail?: string }).detail ?? text;
        } catch {
          /* not a problem document: the text says it */
        }
        throw new Error(`GET /v1/events: ${res.status} ${detail}`.trim());
      }
      const stream = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
      for await (const m of stream) {
        // Balcony names every event and sends its data as one JSON line (API.md "Events").
        yield { id: Number(m.id), event: m.event, data: JSON.parse(m.data) } as StreamEvent;
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      abort.abort();
    }
  }

  return Object.assign(client, { events });
}
