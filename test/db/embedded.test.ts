// The shared cache of the embedded PostgreSQL binaries (src/db/embedded.ts) is used by every
// process that starts one on this machine, often several at once (test files run in parallel;
// instances start together). A process must never see it half made: the links to the JavaScript
// dependencies are renewed on every start while another process may be importing through them,
// and the first copy of the binaries may be racing another start's copy.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fillOnce, pointLink } from "../../src/db/embedded.js";

describe("embedded PostgreSQL's shared cache", () => {
  it("renews a link while others resolve it: never missing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "balcony-link-"));
    try {
      const [a, b] = [join(dir, "a"), join(dir, "b")];
      await mkdir(a);
      await mkdir(b);
      const link = join(dir, "pg");
      await pointLink(a, link);
      let looks = 0;
      const misses: string[] = [];
      for (let round = 0; round < 200; round++) {
        // Starts renewing the link (to either target) while others look through it.
        await Promise.all([
          ...[a, b, a, b].map((target) => pointLink(target, link)),
          ...Array.from({ length: 4 }, () =>
            stat(link).then(
              () => looks++,
              (e: NodeJS.ErrnoException) => misses.push(e.code ?? String(e)),
            ),
          ),
        ]);
      }
      assert.equal(looks + misses.length, 800);
      assert.deepEqual(misses, []);
      assert.ok([a, b].includes(await readlink(link)));
      // No temporary links are left behind.
      assert.deepEqual((await readdir(dir)).sort(), ["a", "b", "pg"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("fills a folder once however many fill it at the same time, and nobody sees it half filled", async () => {
    const dir = await mkdtemp(join(tmpdir(), "balcony-fill-"));
    try {
      const target = join(dir, "cache", "node_modules");
      const seen: string[] = [];
      const files = Array.from({ length: 50 }, (_, i) => `f${i}`);
      await Promise.all(
        Array.from({ length: 6 }, (_, k) =>
          fillOnce(target, join(target, "done"), async (into) => {
            for (const f of files) await writeFile(join(into, f), `${k}`);
            await writeFile(join(into, "done"), `${k}`);
          }).then(async () => {
            // Whoever returns finds it whole, and all of one filler.
            const names = (await readdir(target)).sort();
            const who = new Set(await Promise.all(names.map((n) => readFile(join(target, n), "utf8"))));
            seen.push(`${names.length}:${who.size}`);
          }),
        ),
      );
      assert.deepEqual(seen, Array(6).fill("51:1"));
      // Only the folder itself is left: no staging folders.
      assert.deepEqual(await readdir(join(dir, "cache")), ["node_modules"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
