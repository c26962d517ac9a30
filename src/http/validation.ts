// JSON Schema validation for the HTTP adapter (Ajv, compiled once per schema). Two validators:
// query strings, path parameters and headers are text, so their numbers and booleans are coerced;
// JSON bodies are typed already, and coercing them would turn a null body into "" or 1 into "1"
// instead of refusing the request.
import Ajv, { type ErrorObject } from "ajv";
import addFormats from "ajv-formats";
import { sameLanguage } from "../domain/message.js";
import { LANG_PATTERN, XML_TEXT_PATTERN } from "../domain/text.js";
import type { ErrorCode } from "../domain/errors.js";

/**
 * The keyword of a language map (src/http/schemas.ts langText) whose keys must name distinct
 * languages: JSON Schema cannot say that keys differ other than exactly. "x-" so the OpenAPI
 * document, which carries the schemas as they are, stays valid (OpenAPI 3 §4.8.24 extensions).
 */
export const DISTINCT_LANGUAGES = "x-distinct-languages";

function distinctLanguages(this: unknown, _schema: boolean, data: Record<string, unknown>): boolean {
  const twins = sameLanguage(Object.keys(data));
  if (!twins) return true;
  distinctLanguages.errors = [{ keyword: DISTINCT_LANGUAGES, message: `names one language twice (${twins.join(", ")}): language tags are case-insensitive (RFC 5646 §2.1.1)`, params: { keys: twins } }];
  return false;
}
distinctLanguages.errors = [] as Partial<ErrorObject>[];

function createValidators() {
  const options = { removeAdditional: false, useDefaults: true, allErrors: false, strictNumbers: true, strict: false } as const;
  const body = new Ajv.default({ ...options, coerceTypes: false });
  const parts = new Ajv.default({ ...options, coerceTypes: "array" });
  for (const ajv of [body, parts]) {
    addFormats.default(ajv);
    ajv.addKeyword({ keyword: DISTINCT_LANGUAGES, type: "object", schemaType: "boolean", errors: true, validate: distinctLanguages });
  }
  return { body, parts };
}
export const validators = createValidators();

/**
 * The error that tells what is wrong, of those Ajv reports (it stops at the first, but a union
 * (anyOf) reports each branch's, then its own): a text given as a language map (src/http/
 * schemas.ts langText) fails the string branch with "must be string", and the map branch with
 * what is really wrong (a control character in one of its texts, say). Outside a union, or when
 * every branch refused the value's type, the first. `union`: the union's place, when the error is
 * one of its branches'.
 */
export function tellingError(errors: readonly ErrorObject[] | null | undefined): { error: ErrorObject; union: string | null } | undefined {
  const first = errors?.[0];
  if (!first) return undefined;
  const union = errors!.find((e) => e.keyword === "anyOf" && e.instancePath === first.instancePath);
  if (!union || first.keyword !== "type") return { error: first, union: null };
  const branches = errors!.filter((e) => e !== union && e.instancePath.startsWith(union.instancePath));
  const telling = branches.filter((e) => !(e.keyword === "type" && e.instancePath === union.instancePath));
  return { error: telling.sort((a, b) => b.instancePath.length - a.instancePath.length)[0] ?? first, union: union.instancePath };
}

const dotted = (path: string) => path.replace(/^\//, "").replace(/\//g, ".");

/** The problem for a request part's validation errors (`where`: "body", "querystring", "body.messages.3"...): see tellingError. */
export function validationProblem(errors: readonly ErrorObject[] | null | undefined, where: string): { code: ErrorCode; detail: string; field: string } {
  const t = tellingError(errors);
  const v = t?.error;
  const missing = v?.keyword === "required" ? String((v.params as { missingProperty?: string }).missingProperty ?? "") : "";
  const extra = v?.keyword === "additionalProperties" ? String((v.params as { additionalProperty?: string }).additionalProperty ?? "") : "";
  const place = [where, dotted(v?.instancePath ?? ""), missing || extra].filter(Boolean).join(".");
  // The field is the request's (body.body), the detail names the place inside it (body.body.en).
  const field = t?.union != null ? [where, dotted(t.union)].filter(Boolean).join(".") : place;
  if (v?.keyword === "pattern" && (v.params as { pattern?: string }).pattern === XML_TEXT_PATTERN) {
    return { code: "invalid-text", detail: `${place} contains characters that are not allowed in XML (control characters, lone surrogates)`, field };
  }
  if (v?.keyword === "pattern" && (v.params as { pattern?: string }).pattern === LANG_PATTERN) {
    return { code: "validation-failed", detail: `${place} is not a language tag (RFC 5646, as xml:lang: "en", "pt-BR"; at most 128 characters)`, field };
  }
  if (extra) return { code: "validation-failed", detail: `${place} is not a known field`, field };
  return { code: "validation-failed", detail: `${place} ${v?.message ?? "is invalid"}`, field };
}
