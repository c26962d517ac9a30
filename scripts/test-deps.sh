#!/usr/bin/env bash
# What the full test suite needs besides npm packages, installed where missing (Debian packages;
# as root, or with sudo): the XMPP servers the tests run against, PostgreSQL on 127.0.0.1:5432
# (unless TEST_DATABASE_URL names another), HAProxy (the load balancer in front of several gateway
# instances, test/instances/), Redis (test/http/shared-limits.test.ts starts a private
# redis-server), slixmpp (an independent client library, test/xmpp/client-interop.test.ts) and
# Chromium (the demo page's test, test/http/demo.test.ts). Quick when all is there: `npm test`
# runs it first, so the README's test command works on a fresh machine, and so does `.ci/run`.
# SKIP_TEST_DEPS=1 skips it (a machine that is not Debian, or one set up otherwise).
set -euo pipefail
[ -z "${SKIP_TEST_DEPS:-}" ] || exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
command -v prosody >/dev/null || need+=(prosody)
command -v ejabberdctl >/dev/null || need+=(ejabberd)
[ -n "${TEST_DATABASE_URL:-}" ] || command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v haproxy >/dev/null || need+=(haproxy)
command -v redis-server >/dev/null || need+=(redis-server)
/usr/bin/python3 -c 'import slixmpp' 2>/dev/null || need+=(python3-slixmpp)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if [ -z "${TEST_DATABASE_URL:-}" ] && ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  echo "test-deps: starting PostgreSQL" >&2
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 50); do pg_isready -h 127.0.0.1 -q && break; sleep 0.2; done
fi
