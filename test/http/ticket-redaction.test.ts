// A stream ticket in a request's URL (GET /v1/events?ticket=, as EventSource sends it) is a
// credential: request log lines show the URL with it redacted (src/logger.ts). The ops audit of
// stop 65 sent it under a percent-encoded key (`%74icket=`), which the query parser decodes and
// accepts, and found it in the log in clear.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../src/logger.js";

function loggedUrl(url: string): string {
  let line = "";
  const out = new Writable({ write: (chunk: Buffer, _e, done) => ((line += chunk.toString()), done()) });
  createLogger("info", out).info({ req: { method: "GET", url } }, "incoming request");
  return (JSON.parse(line) as { req: { url: string } }).req.url;
}

describe("a stream ticket in a logged URL", () => {
  it("is redacted under any spelling of its key the query parser reads as ticket; other parameters are kept as sent", () => {
    const T = "tkt_SECRETVALUE";
    for (const [url, logged] of [
      [`/v1/events?ticket=${T}`, "/v1/events?ticket=[redacted]"],
      [`/v1/events?since=5&ticket=${T}&x=1`, "/v1/events?since=5&ticket=[redacted]&x=1"],
      [`/v1/events?%74icket=${T}`, "/v1/events?%74icket=[redacted]"],
      [`/v1/events?TICKET=${T}`, "/v1/events?TICKET=[redacted]"],
      [`/v1/events?%74%69%63%6b%65%74=${T}#f`, "/v1/events?%74%69%63%6b%65%74=[redacted]#f"],
      ["/v1/events?tickets=kept&%zz=1", "/v1/events?tickets=kept&%zz=1"],
    ] as const) {
      const got = loggedUrl(url);
      assert.equal(got, logged, url);
      assert.ok(!got.includes("SECRETVALUE"), url);
    }
  });
});
