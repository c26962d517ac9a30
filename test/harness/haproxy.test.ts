/**
 * The test harness's HAProxy (scripts/harness/haproxy.ts), a real process: two test files that race
 * for one free port must not both listen on it (SO_REUSEPORT would let the kernel split their
 * clients' connections between them), and a reload keeps serving on the same port.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { haproxyConfig, startHaproxy, type Haproxy } from "../../scripts/harness/haproxy.js";

const run = promisify(execFile);

describe("the harness's HAProxy", () => {
  let h: Haproxy;
  let dir: string;
  before(async () => {
    h = await startHaproxy([]);
    dir = await mkdtemp(join(tmpdir(), "balcony-haproxy-test-"));
  });
  after(async () => {
    await h?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a second HAProxy given the same port fails to bind it", async () => {
    const config = join(dir, "second.cfg");
    await writeFile(config, haproxyConfig({ port: h.port, servers: [] }));
    const second = await run("haproxy", ["-f", config, "-D", "-p", join(dir, "second.pid")]).then(
      async () => {
        process.kill(Number((await readFile(join(dir, "second.pid"), "utf8")).trim()), "SIGKILL");
        return "started";
      },
      (err: { stderr?: string }) => err.stderr ?? String(err),
    );
    assert.match(second, /Address already in use/, "the second HAProxy must not share the port");
  });

  it("serves on the same port after a reload, from the new process", async () => {
    const before = (await fetch(`${h.url}/v1/health`)).status;
    const oldPid = h.pid;
    await h.reload();
    assert.notEqual(h.pid, oldPid, "a new process");
    const r = await fetch(`${h.url}/v1/health`, { headers: { connection: "close" } });
    // No gateways behind it: HAProxy's own 503, before the reload and after.
    assert.equal(before, 503);
    assert.equal(r.status, 503);
  });
});
