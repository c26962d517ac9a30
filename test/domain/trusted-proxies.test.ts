// TRUST_PROXY (src/domain/trusted-proxies.ts): nothing is trusted unless configured; true, or a
// list of addresses, CIDR ranges and proxy-addr's range names; anything else is refused.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseTrustProxy } from "../../src/domain/trusted-proxies.js";
import { ConfigError, loadConfig } from "../../src/config.js";

describe("parseTrustProxy", () => {
  it("trusts nothing by default, everything with true, and exactly the listed proxies otherwise", () => {
    assert.equal(parseTrustProxy(undefined), false);
    assert.equal(parseTrustProxy(""), false);
    assert.equal(parseTrustProxy("false"), false);
    assert.equal(parseTrustProxy("true"), true);
    assert.deepEqual(parseTrustProxy("127.0.0.1, 10.0.0.0/8,::1,loopback,uniquelocal"), ["127.0.0.1", "10.0.0.0/8", "::1", "loopback", "uniquelocal"]);
  });

  it("refuses what is no address, range or range name, naming it", () => {
    for (const bad of ["proxy.example", "10/8", "1.2.3", "127.0.0.1,", "127.0.0.1,*", "2", "300.1.1.1"]) {
      assert.throws(() => parseTrustProxy(bad), /is not an IP address or CIDR range/, bad);
    }
  });

  it("is read from the environment as TRUST_PROXY, and a bad one stops the start naming it", () => {
    const env = { XMPP_SECRET: "s", JWT_SECRET: "0123456789abcdef0123456789abcdef" };
    assert.equal(loadConfig(env).trustProxy, false);
    assert.deepEqual(loadConfig({ ...env, TRUST_PROXY: "127.0.0.1" }).trustProxy, ["127.0.0.1"]);
    assert.throws(
      () => loadConfig({ ...env, TRUST_PROXY: "haproxy" }),
      (err: unknown) => err instanceof ConfigError && err.variable === "TRUST_PROXY",
    );
  });
});
