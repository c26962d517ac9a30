// Writes openapi/openapi.json from the route schemas, then openapi/schema.d.ts (the TypeScript
// types of the typed client, src/client.ts) from that document with openapi-typescript
// (npm run openapi). test/http/ops.test.ts fails when either committed file differs from what the
// running app serves.
import { writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from "openapi-typescript";
import { openApiDocument } from "../src/http/openapi.js";

/** The text of openapi/schema.d.ts for an OpenAPI document (the document is not modified). */
export async function schemaTypes(doc: unknown): Promise<string> {
  const ast = await openapiTS(structuredClone(doc) as OpenAPI3, { silent: true });
  return COMMENT_HEADER + astToString(ast);
}

// Only when run as a script: the test imports schemaTypes() without writing anything.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const doc = await openApiDocument();
  await writeFile(new URL("../openapi/openapi.json", import.meta.url), JSON.stringify(doc, null, 2) + "\n");
  console.log("wrote openapi/openapi.json");
  await writeFile(new URL("../openapi/schema.d.ts", import.meta.url), await schemaTypes(doc));
  console.log("wrote openapi/schema.d.ts");
}
