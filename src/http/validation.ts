// JSON Schema validation for the HTTP adapter (Ajv, compiled once per schema). Two validators:
// query strings, path parameters and headers are text, so their numbers and booleans are coerced;
// JSON bodies are typed already, and coercing them would turn a null body into "" or 1 into "1"
// instead of refusing the request.
import Ajv, { type ErrorObject } from "ajv";
import addFormats from "ajv-formats";
import { XML_TEXT_PATTERN } from "../domain/text.js";
import type { ErrorCode } from "../domain/errors.js";

function createValidators() {
  const options = { removeAdditional: false, useDefaults: true, allErrors: false, strictNumbers: true, strict: false } as const;
  const body = new Ajv.default({ ...options, coerceTypes: false });
  const parts = new Ajv.default({ ...options, coerceTypes: "array" });
  addFormats.default(body);
  addFormats.default(parts);
  return { body, parts };
}
export const validators = createValidators();

/** The problem for the first validation error of a request part (`where`: "body", "querystring", "body.messages.3"...). */
export function validationProblem(v: ErrorObject | undefined, where: string): { code: ErrorCode; detail: string; field: string } {
  const path = v?.instancePath ? v.instancePath.replace(/^\//, "").replace(/\//g, ".") : "";
  const missing = v?.keyword === "required" ? String((v.params as { missingProperty?: string }).missingProperty ?? "") : "";
  const extra = v?.keyword === "additionalProperties" ? String((v.params as { additionalProperty?: string }).additionalProperty ?? "") : "";
  const field = [where, path, missing || extra].filter(Boolean).join(".");
  if (v?.keyword === "pattern" && (v.params as { pattern?: string }).pattern === XML_TEXT_PATTERN) {
    return { code: "invalid-text", detail: `${field} contains characters that are not allowed in XML (control characters, lone surrogates)`, field };
  }
  if (extra) return { code: "validation-failed", detail: `${field} is not a known field`, field };
  return { code: "validation-failed", detail: `${field} ${v?.message ?? "is invalid"}`, field };
}
