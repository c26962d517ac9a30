#!/usr/bin/env node
// `balcony`: the operator's command line. One module per command group in src/cli/; every
// command reads the gateway's own environment (src/config.ts) and takes --json.
import { Command, CommanderError } from "commander";
import { accountsCommand } from "./cli/accounts.js";
import { EXIT } from "./cli/common.js";
import { doctorCommand } from "./cli/doctor.js";
import { migrateCommand } from "./cli/migrate.js";
import { startCommand } from "./cli/start.js";
import { tokenCommand } from "./cli/token.js";

/** --json anywhere on the command line, read before commander parses it: its own errors need it too. */
const json = process.argv.slice(2).includes("--json");

const program = new Command("balcony")
  .description(
    "Balcony, an HTTP gateway to XMPP: run it, migrate its database, mint tokens, manage accounts, check the setup. " +
      "Every command reads the gateway's environment (README.md, \"Configuration\"); --env loads a .env file first.",
  )
  .option("--json", "print one JSON document for scripts instead of text (errors too: {\"error\": {code, message, fix}})")
  // Not --env-file: Node.js 20 takes that flag for itself wherever it stands, even after the
  // script (it exits 9 on a missing file before this program runs, --json or not).
  .option("--env <file>", "load variables from this .env file first (variables already set win)")
  // Kept for the scripts that used it before --env: it works with a file that exists.
  .option("--env-file <file>", "the same as --env, but Node.js itself exits 9 on a missing file")
  .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
  .showHelpAfterError("(add --help for usage)")
  // With --json, a usage error is the error document on stdout too, not commander's text (the ops audit of stop 65).
  .configureOutput(json ? { writeErr: () => undefined } : {})
  // Usage errors (and a group without its subcommand: `balcony accounts`) exit 2, like configuration errors; --help exits 0.
  .exitOverride((err: CommanderError) => {
    const helped = err.code === "commander.helpDisplayed" || err.code === "commander.help" || err.code === "commander.version";
    const ok = helped && err.exitCode === 0;
    // A group without its subcommand shows its help as the error: with --json, say so instead.
    const message = helped ? "a subcommand is missing" : err.message.replace(/^error: /, "");
    if (json && !ok) process.stdout.write(`${JSON.stringify({ error: { code: "usage", message, fix: "add --help for usage" } })}\n`);
    process.exit(ok ? EXIT.ok : EXIT.usage);
  });

startCommand(program);
migrateCommand(program);
tokenCommand(program);
accountsCommand(program);
doctorCommand(program);
program.addHelpText("after", "\nExit codes: 0 done, 1 failed (or a doctor check other than configuration failed), 2 bad usage or configuration (doctor's configuration check too).");

await program.parseAsync();
