// Checks every response a test gets through TestGateway.request() against the committed OpenAPI
// document (openapi/openapi.json): the status is one the operation lists, the body validates
// against the schema listed for it (test/helpers/openapi-conformance.ts), and the headers a client
// acts on (Location, ETag, Retry-After, WWW-Authenticate, Idempotent-Replayed, Balcony-Resource)
// are listed for that status when they come. Mismatches are kept process-wide, like the event
// catalogue's, and TestGateway.stop() turns them into a failure.
import { readFileSync } from "node:fs";
import { OpenApiConformance } from "./openapi-conformance.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const WATCHED_HEADERS = ["location", "etag", "retry-after", "www-authenticate", "idempotent-replayed", "balcony-resource"];

let loaded: { doc: Json; conformance: OpenApiConformance; templates: { path: string; re: RegExp }[] } | undefined;

function load() {
  if (!loaded) {
    const doc = JSON.parse(readFileSync(new URL("../../openapi/openapi.json", import.meta.url), "utf8"));
    const templates = Object.keys(doc.paths).map((path) => ({ path, re: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`) }));
    // Literal paths win over templated ones (/v1/messages/batch over /v1/messages/{id}).
    templates.sort((a, b) => (a.path.includes("{") ? 1 : 0) - (b.path.includes("{") ? 1 : 0));
    loaded = { doc, conformance: new OpenApiConformance(doc), templates };
  }
  return loaded;
}

export const responseMismatches: string[] = [];

/** Records how a response differs from the document, if it does; undocumented paths (/docs, /demo...) are skipped. */
export function checkResponse(method: string, url: string, res: { status: number; headers: Headers; text: string }): void {
  const m = method.toUpperCase();
  if (m === "HEAD" || m === "OPTIONS") return;
  const { doc, conformance, templates } = load();
  const pathname = url.split("?")[0]!;
  const template = templates.find((t) => t.re.test(pathname))?.path;
  if (!template || !conformance.documents(m, template)) return;
  const contentType = res.headers.get("content-type") ?? undefined;
  // An event stream never ends: its text is not what the document describes.
  const text = contentType?.startsWith("text/event-stream") ? "" : res.text;
  const where = `${m} ${url} (${template}) -> ${res.status}`;
  const mismatch = conformance.check(m, template, { status: res.status, contentType, text });
  if (mismatch) {
    responseMismatches.push(`${where}: ${mismatch}`);
    return;
  }
  const responses = doc.paths[template][m.toLowerCase()].responses as Record<string, Json>;
  const documented = responses[String(res.status)] ?? responses[`${String(res.status)[0]}XX`] ?? responses.default;
  const headers = Object.keys(documented?.headers ?? {}).map((h) => h.toLowerCase());
  for (const h of WATCHED_HEADERS) if (res.headers.has(h) && !headers.includes(h)) responseMismatches.push(`${where}: header ${h} (${res.headers.get(h)}) is not documented for this status`);
}

export function assertNoResponseMismatches(): void {
  if (responseMismatches.length === 0) return;
  const unique = [...new Set(responseMismatches)];
  responseMismatches.length = 0;
  throw new Error(`${unique.length} response(s) did not match the OpenAPI document:\n${unique.join("\n")}`);
}
