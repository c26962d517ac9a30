// `balcony start`: the gateway, as `npm start` runs it (src/serve.ts). One difference: the bin runs
// under a plain `#!/usr/bin/env node` (a shebang with arguments needs `env -S`, which GNU coreutils
// has only since 8.30 and minimal systems' `env` may lack), so V8's memory reducer stays on unless
// node is started with the flag npm start gives it
// (`node --no-memory-reducer dist/cli.js start`; README "Deploying").
import type { Command } from "commander";
import { commandConfig, run } from "./common.js";

export function startCommand(program: Command): void {
  program
    .command("start")
    .summary("run the gateway (as npm start does, bar its V8 flag)")
    .description(
      "Runs the gateway in the foreground until SIGINT or SIGTERM, then stops it cleanly: the same start-up as " +
        "`npm start` (migrations, the component link, the HTTP listener on HOST:PORT). Configuration comes from " +
        "the environment (README.md, \"Configuration\"); logs are pino JSON lines on stdout, with or without --json.",
    )
    .action((_opts: object, cmd: Command) =>
      run(
        cmd,
        async () => {
          // Configuration errors are reported like every command's (exit 2); a failed start as server.ts does.
          const config = commandConfig();
          const { serve, startFailed } = await import("../serve.js");
          await serve(config).catch(startFailed);
        },
        { keepsRunning: true },
      ),
    );
}
