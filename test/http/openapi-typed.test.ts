// Every value the API answers with has a type in the OpenAPI document: a schema of `{}` (any JSON
// at all) gives a generated client `unknown`. Found by the roster API audit of stop 65: a
// presence's and a session's `status` (API.md: string | {<lang>: string}) and a room's `subject`
// were `{}`. The one left: a message's `error`, what the peer's error stanza said (kept as it came).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

type Node = { [key: string]: unknown } | unknown[] | string | number | boolean | null;
const doc = JSON.parse(readFileSync(new URL("../../openapi/openapi.json", import.meta.url), "utf8")) as { paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: Node }> }> }>>; components?: { schemas?: Node } };

/** Where in `s` a schema is `{}`. Values of keywords that hold data, not schemas, are skipped. */
function untyped(s: Node, path: string, out: string[]): string[] {
  if (s === null || typeof s !== "object") return out;
  if (Array.isArray(s)) {
    s.forEach((x, i) => untyped(x as Node, `${path}[${i}]`, out));
    return out;
  }
  if (Object.keys(s).length === 0) out.push(path);
  for (const [k, v] of Object.entries(s)) if (!["example", "examples", "enum", "default", "const"].includes(k)) untyped(v as Node, `${path}/${k}`, out);
  return out;
}

describe("the OpenAPI document types every answer", () => {
  it("no response property is {} but a message's error", () => {
    const found: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        for (const [code, r] of Object.entries(op.responses ?? {})) untyped(r.content?.["application/json"]?.schema ?? null, `${m.toUpperCase()} ${p} ${code}`, found);
      }
    }
    untyped(doc.components?.schemas ?? null, "components", found);
    assert.ok(found.length > 0, "the walk finds the message error's {}: it reads the document");
    assert.deepEqual(found.filter((f) => !/\/properties\/error$/.test(f)), []);
  });
});
