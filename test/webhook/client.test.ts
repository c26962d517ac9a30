// The webhook adapter's target checks (src/webhook/client.ts), with DNS stood in for by an injected
// resolver and a real HTTP server on 127.0.0.1: at creation (checkTarget) a host that does not
// resolve, or not in time, is accepted, one that resolves to a forbidden address is refused, cloud
// metadata names are refused by name, and no lookup is made when every address is allowed; at
// delivery (post) every connection resolves again, so a name that resolved to nothing when it was
// accepted and later resolves to a forbidden address (DNS rebinding) is refused before connecting.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { LookupAddress } from "node:dns";
import { AppError } from "../../src/domain/errors.js";
import { parseAllowList, type AllowList } from "../../src/domain/webhook-target.js";
import { WebhookClient, type Resolve } from "../../src/webhook/client.js";
import { freePort } from "../../scripts/harness/ports.js";

/** A stand-in for DNS: answers from `table` (a missing name is NXDOMAIN, "hang" never answers), counting lookups. */
function fakeDns(table: Record<string, string[] | "hang">): { resolve: Resolve; lookups: string[] } {
  const lookups: string[] = [];
  const resolve: Resolve = (hostname) => {
    lookups.push(hostname);
    const answer = table[hostname];
    if (answer === "hang") return new Promise<LookupAddress[]>(() => {});
    if (answer === undefined) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }));
    return Promise.resolve(answer.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })));
  };
  return { resolve, lookups };
}

function client(allow: AllowList, resolve: Resolve): WebhookClient {
  return new WebhookClient({ allow, timeoutMs: 3000, userAgent: "client-test", resolve });
}

/** What checkTarget says: "ok", or the AppError's code. */
async function verdict(c: WebhookClient, url: string): Promise<string> {
  try {
    await c.checkTarget(url, "body.url");
    return "ok";
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    assert.equal(err.extra.field, "body.url");
    return err.code;
  }
}

const request = (url: string) => ({ url, msgId: "msg_test", secrets: [`whsec_${Buffer.alloc(32, 1).toString("base64")}`], body: '{"id":1}' });

describe("WebhookClient.checkTarget (creation)", () => {
  it("accepts a host that does not resolve (NXDOMAIN): delivery resolves it again", async () => {
    const dns = fakeDns({});
    const c = client([], dns.resolve);
    assert.equal(await verdict(c, "https://example.com/hook"), "ok");
    assert.equal(await verdict(c, "https://hooks.example.invalid/x"), "ok");
    assert.deepEqual(dns.lookups, ["example.com", "hooks.example.invalid"], "the names were looked up");
    await c.close();
  });

  it("accepts a host whose lookup does not answer, within the lookup's time limit", { timeout: 10_000 }, async () => {
    const dns = fakeDns({ "slow.example.com": "hang" });
    const c = client([], dns.resolve);
    const t0 = performance.now();
    assert.equal(await verdict(c, "https://slow.example.com/hook"), "ok");
    const ms = performance.now() - t0;
    assert.ok(ms < 5000, `took ${Math.round(ms)} ms`);
    await c.close();
  });

  it("refuses a host with any forbidden address (400 webhook-target-forbidden), and accepts public ones", async () => {
    const dns = fakeDns({
      "public.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
      "mixed.example.com": ["93.184.215.14", "10.0.0.7"],
      "loop.example.com": ["127.0.0.1"],
      "meta.example.com": ["169.254.169.254"],
      "ula.example.com": ["fd00:ec2::254"],
    });
    const c = client([], dns.resolve);
    assert.equal(await verdict(c, "https://public.example.com/"), "ok");
    for (const host of ["mixed", "loop", "meta", "ula"]) assert.equal(await verdict(c, `https://${host}.example.com/`), "webhook-target-forbidden", host);
    await c.close();
  });

  it("refuses cloud metadata names by name, whether or not they resolve, without a lookup", async () => {
    const dns = fakeDns({ "metadata.google.internal": ["169.254.169.254"] });
    const c = client(parseAllowList("127.0.0.1"), dns.resolve);
    for (const url of ["http://metadata.google.internal/computeMetadata/v1/", "http://METADATA.google.internal./", "http://metadata/", "http://instance-data/latest/meta-data/", "http://metadat%61.goog/"]) {
      assert.equal(await verdict(c, url), "webhook-target-forbidden", url);
    }
    assert.deepEqual(dns.lookups, []);
    await c.close();
  });

  it("checks IP literals as before, without a lookup", async () => {
    const dns = fakeDns({});
    const c = client(parseAllowList("127.0.0.1"), dns.resolve);
    for (const host of ["127.0.0.2", "[::1]", "10.0.0.1", "169.254.169.254", "2130706434"]) assert.equal(await verdict(c, `http://${host}/`), "webhook-target-forbidden", host);
    assert.equal(await verdict(c, "http://127.0.0.1:9/"), "ok");
    assert.equal(await verdict(c, "http://8.8.8.8/"), "ok");
    assert.deepEqual(dns.lookups, []);
    await c.close();
  });

  it("makes no lookup when every address is allowed (WEBHOOK_ALLOW_PRIVATE=true)", async () => {
    const dns = fakeDns({ "loop.example.com": ["127.0.0.1"] });
    const c = client(parseAllowList("true"), dns.resolve);
    for (const url of ["https://loop.example.com/", "https://nowhere.example.invalid/", "http://127.0.0.2/", "http://metadata.google.internal/"]) assert.equal(await verdict(c, url), "ok", url);
    assert.deepEqual(dns.lookups, []);
    await c.close();
  });

  it("still refuses what is not a valid target URL (400 validation-failed)", async () => {
    const c = client([], fakeDns({}).resolve);
    for (const url of ["ftp://example.com/", "https://user:pw@example.com/", "/relative"]) assert.equal(await verdict(c, url), "validation-failed", url);
    await c.close();
  });
});

describe("WebhookClient.post (delivery resolves and checks again)", () => {
  let server: Server;
  let port: number;
  const received: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      received.push(`${req.headers.host} ${req.url}`);
      res.end("ok");
    });
    const free = await freePort();
    await new Promise<void>((resolve) => server.listen(free, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("refuses a name that was accepted unresolved and later resolves to a forbidden address (DNS rebinding)", async () => {
    const table: Record<string, string[] | "hang"> = {};
    const dns = fakeDns(table);
    const strict = client([], dns.resolve);
    const url = `http://rebind.example.com:${port}/hook`;
    // Created while the name resolves to nothing: accepted.
    assert.equal(await verdict(strict, url), "ok");
    // Delivered while it still does not resolve: a failed attempt (retried by the lane).
    const unresolved = await strict.post(request(url), new AbortController().signal);
    assert.equal(unresolved.ok, false);
    assert.match(unresolved.error ?? "", /ENOTFOUND/);
    // The name now points at loopback: refused before any connection is made.
    table["rebind.example.com"] = ["127.0.0.1"];
    const rebound = await strict.post(request(url), new AbortController().signal);
    assert.deepEqual([rebound.ok, rebound.status], [false, null]);
    assert.match(rebound.error ?? "", /^target-forbidden: rebind\.example\.com resolves to 127\.0\.0\.1 \(loopback\)/);
    // A mix of a public and a forbidden address is refused too.
    table["rebind.example.com"] = ["93.184.215.14", "127.0.0.1"];
    assert.match((await strict.post(request(url), new AbortController().signal)).error ?? "", /^target-forbidden: .*127\.0\.0\.1/);
    await strict.close();

    // Sentinel: the same name and answer with 127.0.0.1 allowed reaches the server, so the refusals
    // above were the check, not a server that could not be reached.
    table["rebind.example.com"] = ["127.0.0.1"];
    const allowed = client(parseAllowList("127.0.0.1"), dns.resolve);
    const ok = await allowed.post(request(url), new AbortController().signal);
    assert.deepEqual([ok.ok, ok.status, ok.error], [true, 200, null]);
    await allowed.close();
    assert.deepEqual(received, [`rebind.example.com:${port} /hook`], "only the allowed delivery reached the server");
  });

  it("refuses a cloud metadata name at delivery too, whatever it resolves to", async () => {
    const before = received.length;
    const dns = fakeDns({ "metadata.google.internal": ["127.0.0.1"], "fine.example.com": ["127.0.0.1"] });
    const c = client(parseAllowList("127.0.0.1"), dns.resolve);
    const refused = await c.post(request(`http://metadata.google.internal:${port}/computeMetadata/v1/`), new AbortController().signal);
    assert.equal(refused.ok, false);
    assert.match(refused.error ?? "", /^target-forbidden: metadata\.google\.internal is a cloud metadata service/);
    // Sentinel: another name with the same answer is delivered.
    assert.equal((await c.post(request(`http://fine.example.com:${port}/sentinel`), new AbortController().signal)).ok, true);
    await c.close();
    assert.deepEqual(received.slice(before), [`fine.example.com:${port} /sentinel`]);
  });
});
