// GET /v1/events' two views, chosen by content negotiation: the route serves the one picked, and
// authentication takes a stream ticket for the SSE view only (src/http/context.ts).
import Negotiator from "negotiator";

// The two views, JSON first: it is what a request that takes anything (`*/*`) gets. Each also with
// the charset it is sent in, since a range's parameters must match one of ours.
const VIEWS = ["application/json", "text/event-stream", "application/json; charset=utf-8", "text/event-stream; charset=utf-8"];

/** RFC 9110 §12.5.1 content negotiation: the view the Accept header prefers (JSON without one), or null for neither. */
export function eventsView(accept: string | undefined): "sse" | "json" | null {
  if (!accept) return "json";
  const best = new Negotiator({ headers: { accept } }).mediaType(VIEWS);
  return best === undefined ? null : best.startsWith("text/event-stream") ? "sse" : "json";
}
