// Checks a real response against the OpenAPI document the app serves, as a client generated from
// that document sees it: the status must be one the operation documents (OpenAPI 3.1 §4.8.16:
// an exact code, else its range "4XX", else "default"), the media type one documented for that
// status, and a JSON body must validate against the documented schema (a problem document for a
// 4xx/5xx: the routes document those as application/problem+json with the Problem schema). A
// status documented without content must come without a body.
//
// Left out: HEAD (no body; Fastify derives it from GET), OPTIONS, and what the document does not
// describe at all (/docs, swagger-ui's pages, and /openapi.json, the document itself, hidden):
// check() answers "undocumented operation" for those, callers skip them on purpose.
//
// Adaptations of the document's schemas for Ajv (JSON Schema draft-07, as Fastify itself validates
// with), kept to what this document needs:
//  - `$ref: "#/components/schemas/X"` points into the OpenAPI document, not into the schema being
//    compiled: each component is registered with Ajv under its own id and the references are
//    rewritten to that id.
//  - OpenAPI's own schema keywords (`discriminator`, `example`, `xml`, `externalDocs`; §4.8.24 `x-`
//    extensions such as x-distinct-languages) are annotations here: `discriminator` only names
//    which `oneOf` branch applies, which `oneOf` decides anyway; x-distinct-languages is the
//    server's own request check, which a generated client cannot know either. Any other unknown
//    keyword still fails the compilation (strictSchema), so a new one is not silently ignored.
//  - `nullable: true` (OpenAPI 3.0; the document is 3.1, which says `type: [..., "null"]`) would
//    need translating: the helper refuses a document that uses it rather than misread it.
import AjvModule, { type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** A response as it came over the wire. */
export interface ObservedResponse {
  status: number;
  /** The Content-Type header as sent (parameters such as charset are ignored), or undefined. */
  contentType: string | undefined;
  /** The body as text ("" for none). An event stream's text is not checked (it never ends). */
  text: string;
}

const METHODS = ["get", "put", "post", "delete", "patch"];
const ANNOTATIONS = ["discriminator", "example", "xml", "externalDocs"];
const COMPONENT = "#/components/schemas/";
const componentId = (name: string) => `urn:openapi:components:${name}`;

/** JSON media types (RFC 6839 §3.1: +json), whose bodies are parsed and validated. */
const isJson = (mediaType: string) => mediaType === "application/json" || mediaType.endsWith("+json");

function rewriteRefs(schema: Json, extensions: Set<string>): Json {
  if (Array.isArray(schema)) return schema.map((s) => rewriteRefs(s, extensions));
  if (!schema || typeof schema !== "object") return schema;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === "nullable") throw new Error("the document uses `nullable` (OpenAPI 3.0): translate it before checking against it");
    if (k.startsWith("x-")) extensions.add(k);
    out[k] = k === "$ref" && typeof v === "string" && v.startsWith(COMPONENT) ? componentId(v.slice(COMPONENT.length)) : rewriteRefs(v, extensions);
  }
  return out;
}

export class OpenApiConformance {
  private readonly ajv;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly doc: Json) {
    if (!doc || typeof doc.paths !== "object") throw new Error("not an OpenAPI document (no paths)");
    this.ajv = new AjvModule.default({ strictSchema: true, strictTypes: false, strictTuples: false, strictRequired: false, allErrors: false });
    addFormatsModule.default(this.ajv);
    const extensions = new Set<string>();
    const components = Object.entries((doc.components?.schemas ?? {}) as Record<string, Json>).map(([name, s]) => [name, rewriteRefs(s, extensions)] as const);
    // Responses' schemas too: their extension keywords must be known before anything compiles.
    for (const op of this.allOperations()) for (const r of Object.values(op.responses ?? {}) as Json[]) rewriteRefs(r?.content ?? {}, extensions);
    for (const k of [...ANNOTATIONS, ...extensions]) this.ajv.addKeyword(k);
    for (const [name, s] of components) this.ajv.addSchema({ ...s, $id: componentId(name) });
  }

  private allOperations(): Json[] {
    return Object.values(this.doc.paths as Record<string, Record<string, Json>>).flatMap((ops) => METHODS.map((m) => ops[m]).filter(Boolean));
  }

  /** Every documented operation, "METHOD /path/{param}", optionally only those whose path starts with `prefix`. */
  operations(prefix = "/"): string[] {
    const out: string[] = [];
    for (const [path, ops] of Object.entries(this.doc.paths as Record<string, Record<string, Json>>)) {
      if (!path.startsWith(prefix)) continue;
      for (const m of METHODS) if (ops[m]) out.push(`${m.toUpperCase()} ${path}`);
    }
    return out;
  }

  /** Whether the document describes the operation (path in OpenAPI form: /v1/roster/{jid}). */
  documents(method: string, path: string): boolean {
    return Boolean(this.doc.paths[path]?.[method.toLowerCase()]);
  }

  /**
   * The first way the response differs from what the document says the operation answers, or
   * null when it conforms.
   */
  check(method: string, path: string, res: ObservedResponse): string | null {
    const op = this.doc.paths[path]?.[method.toLowerCase()];
    if (!op) return `undocumented operation ${method} ${path}`;
    const responses = (op.responses ?? {}) as Record<string, Json>;
    const key = [String(res.status), `${String(res.status)[0]}XX`, "default"].find((k) => responses[k] !== undefined);
    if (key === undefined) return `status ${res.status} is not documented (documented: ${Object.keys(responses).join(", ")})`;
    const content = (responses[key].content ?? {}) as Record<string, Json>;
    const mediaType = (res.contentType ?? "").split(";")[0]!.trim().toLowerCase();
    if (Object.keys(content).length === 0) {
      return res.text.length === 0 ? null : `status ${res.status} is documented without a body, but one came (${mediaType || "no content-type"}): ${res.text.slice(0, 200)}`;
    }
    const media = content[mediaType];
    if (!media) return `status ${res.status} documents ${Object.keys(content).join(", ")}, not ${JSON.stringify(res.contentType ?? "")}`;
    // Text (Prometheus' exposition, an event stream): the media type is what a client dispatches on.
    if (!isJson(mediaType)) return null;
    let body: unknown;
    try {
      body = JSON.parse(res.text);
    } catch {
      return `status ${res.status} ${mediaType}: the body is not JSON: ${res.text.slice(0, 200)}`;
    }
    const validate = this.validator(`${method.toUpperCase()} ${path} ${key} ${mediaType}`, media.schema ?? {});
    if (validate(body)) return null;
    const e = validate.errors?.[0];
    return `status ${res.status} ${mediaType}: body${e?.instancePath ?? ""} ${e?.message ?? "does not match"} (${JSON.stringify(e?.params ?? {})}, schema ${e?.schemaPath ?? "?"}): ${res.text.slice(0, 300)}`;
  }

  private validator(key: string, schema: Json): ValidateFunction {
    let v = this.validators.get(key);
    if (!v) {
      v = this.ajv.compile(rewriteRefs(schema, new Set()));
      this.validators.set(key, v);
    }
    return v;
  }
}
