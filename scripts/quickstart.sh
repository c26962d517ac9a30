#!/usr/bin/env bash
# One command from a fresh Debian machine with Node 20 to a working Balcony: installs what is
# missing (npm packages, Prisma client, Prosody when no XMPP_SERVICE is configured), then starts
# the whole stack and shows it working (scripts/quickstart.ts). `--demo-only` stops after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 12) ? 0 : 1)' 2>/dev/null; then
  echo "Balcony needs Node.js 20.12 or newer (node --version: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi
# Every step says what it is about to do, with the time since the start (shared with quickstart.ts).
QUICKSTART_STARTED_MS=$(date +%s%3N)
export QUICKSTART_STARTED_MS
step() {
  local ms=$(($(date +%s%3N) - QUICKSTART_STARTED_MS))
  printf '==> [%3d.%ds] %s\n' $((ms / 1000)) $((ms / 100 % 10)) "$*"
}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

xmpp_service="${XMPP_SERVICE:-}"
[ -z "$xmpp_service" ] && [ -f .env ] && xmpp_service="$(sed -n 's/^XMPP_SERVICE=//p' .env | tail -1)"
if [ -z "$xmpp_service" ] && ! command -v prosody >/dev/null; then
  step "Installing Prosody (no XMPP_SERVICE configured): apt-get update, apt-get install prosody"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends prosody
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "Installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -f src/db/generated/client.ts ] || [ prisma/schema.prisma -nt src/db/generated/client.ts ]; then
  step "Generating the Prisma client (prisma generate)"
  # Where Prisma cannot download its engine, the stand-in from ../shared serves (see README).
  if [ -z "${PRISMA_SCHEMA_ENGINE_BINARY:-}" ] && [ -f ../shared/prisma-offline/install.sh ]; then
    PRISMA_SCHEMA_ENGINE_BINARY="$(bash ../shared/prisma-offline/install.sh)"
    export PRISMA_SCHEMA_ENGINE_BINARY
  fi
  npx prisma generate >/dev/null
fi

step "Loading Balcony (scripts/quickstart.ts)"
# Ctrl-C in a terminal signals its whole foreground process group: the embedded PostgreSQL and
# Prosody would stop at once, under the gateway's drain. So the stack runs in a session of its own,
# and this script hands it a Ctrl-C (or a SIGTERM, or the terminal closing) as one SIGTERM: the
# gateway stops first, then what it uses.
setsid node --import tsx scripts/quickstart.ts "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM HUP
status=0
while :; do
  # wait returns early (over 128) when a trapped signal arrives: the stack is still stopping.
  wait "$pid" && status=0 || status=$?
  kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
