// Writes openapi/openapi.json from the route schemas (npm run openapi). A test fails when the
// committed file differs from what the running app serves.
import { writeFile } from "node:fs/promises";
import { openApiDocument } from "../src/http/openapi.js";

const doc = await openApiDocument();
await writeFile(new URL("../openapi/openapi.json", import.meta.url), JSON.stringify(doc, null, 2) + "\n");
console.log("wrote openapi/openapi.json");
