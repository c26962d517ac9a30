// `balcony accounts list|add|remove`: the admin account routes, straight against PostgreSQL
// through the same use case (src/services/accounts.ts) that serves them, so they need no running
// gateway and no token.
//
// Removal records the account's goodbye stanzas (unavailable presence to everyone who had it,
// unsubscribe/unsubscribed to every contact) in the outbox in the deletion's transaction, exactly
// as DELETE /v1/accounts does on an instance that does not hold the component link: the instance
// that holds it is woken (NOTIFY) and sends them; with no gateway running, they go out when one
// starts. Every instance forgets the account on commit (its cache is invalidated by NOTIFY too).
import type { Command } from "commander";
import type { Config } from "../config.js";
import type { Database } from "../db/client.js";
import type { Accounts, AccountView } from "../services/accounts.js";
import type { SendGate } from "../services/delivery.js";
import type { OutboundPort } from "../services/ports.js";
import { CliError, commandConfig, run, UNUSED, withDatabase } from "./common.js";
import type { Output } from "./output.js";

/** This process never holds the component link: what it records is sent by the instance that does. */
const NOT_HOLDER: SendGate = { holder: false, exclusive: false, fence: () => null, drainIdleLimitMs: 0 };
const NO_LINK: OutboundPort = { online: false, maxStanzaBytes: 0, byteLength: () => 0, write: () => null, confirm: async () => false };
const QUIET = { debug: () => undefined, info: () => undefined, warn: () => undefined };

/** The use case with a Delivery that only records (loaded on use: Prisma takes a second to load). */
async function accountsUseCase(db: Database, config: Config): Promise<Accounts> {
  const [{ Accounts }, { Accounts: AccountStore }, { Delivery }] = await Promise.all([import("../services/accounts.js"), import("../db/accounts.js"), import("../services/delivery.js")]);
  const delivery = new Delivery(db, NO_LINK, NOT_HOLDER, QUIET, { messagesWritten: () => undefined });
  return new Accounts(new AccountStore(db.prisma), delivery, config.xmpp.domain, false);
}

/** Runs `fn` with the accounts use case on the gateway's database. */
async function withAccounts<T>(out: Output, fn: (accounts: Accounts) => Promise<T>): Promise<T> {
  const config = commandConfig({ ...UNUSED.xmpp, ...UNUSED.jwt });
  return withDatabase(config, out, async (db) => {
    // A database without this version's schema would fail deep inside Prisma: say what to do instead.
    const { migrationStatus } = await import("../db/migrate.js");
    const { pending } = await migrationStatus(db.pool);
    if (pending.length > 0) {
      throw new CliError("migrations-pending", `the database lacks ${pending.length} migration${pending.length === 1 ? "" : "s"} of this version: ${pending.join(", ")}`, "run `balcony migrate` (the gateway also applies them when it starts)");
    }
    return fn(await accountsUseCase(db, config));
  });
}

async function listAll(accounts: Accounts): Promise<AccountView[]> {
  const all: AccountView[] = [];
  for (let cursor = 0; ; ) {
    const page = await accounts.list(cursor, 500);
    all.push(...page.items);
    if (page.nextCursor === null) return all;
    cursor = Number(page.nextCursor);
  }
}

const DB_NOTE = "Works on the gateway's database (DATABASE_URL, or the embedded PostgreSQL under DATA_DIR); no gateway or token needed.";

export function accountsCommand(program: Command): void {
  const accounts = program
    .command("accounts")
    .summary("list, add and remove accounts")
    .description(`Manages the accounts this gateway hosts (localpart@XMPP_DOMAIN), as the admin routes /v1/accounts do. ${DB_NOTE}`);

  accounts
    .command("list")
    .summary("list every account")
    .description(`Lists every account, oldest first, with its creation time. ${DB_NOTE}`)
    .action((_opts: object, cmd: Command) =>
      run(cmd, async (out) => {
        const items = await withAccounts(out, listAll);
        if (out.json) return out.data({ accounts: items });
        if (items.length === 0) return out.line("no accounts");
        out.table(["JID", "CREATED"], items.map((a) => [a.jid, a.createdAt]));
        out.line(out.paint("dim", `${items.length} account${items.length === 1 ? "" : "s"}`));
      }),
    );

  accounts
    .command("add")
    .summary("create an account")
    .description(`Creates an account, as POST /v1/accounts does. ${DB_NOTE}`)
    .argument("<localpart>", "the account's localpart (or its bare JID on XMPP_DOMAIN)")
    .action((raw: string, _opts: object, cmd: Command) =>
      run(cmd, async (out) => {
        const jid = await withAccounts(out, async (a) => a.create(a.localpart(raw, "localpart"), "localpart"));
        if (out.json) return out.data({ jid });
        out.line(`${out.paint("ok", "added")} ${jid}`);
      }),
    );

  accounts
    .command("remove")
    .summary("delete an account and its data; its contacts are told")
    .description(
      "Deletes an account and all its data, as DELETE /v1/accounts/{localpart} does: its contacts get unavailable " +
        "presence and unsubscribe/unsubscribed (RFC 6121 §2.5.2). Those stanzas are recorded with the deletion and " +
        "sent by the running gateway instance that holds the component link (at once: it is woken through PostgreSQL); " +
        `with no gateway running, by the next one to start. ${DB_NOTE}`,
    )
    .argument("<localpart>", "the account's localpart (or its bare JID on XMPP_DOMAIN)")
    .action((raw: string, _opts: object, cmd: Command) =>
      run(cmd, async (out) => {
        const jid = await withAccounts(out, async (a) => {
          const localpart = a.localpart(raw, "localpart");
          await a.delete(localpart);
          return a.jid(localpart);
        });
        if (out.json) return out.data({ removed: jid });
        out.line(`${out.paint("ok", "removed")} ${jid}`);
      }),
    );
}
