#!/usr/bin/env bash
# Installs from Debian's packages the tools the infra tests run (tests/unit/test_infra.py,
# tests/integration/test_run_metrics.py): nginx (`nginx -t`), promtool (from `prometheus`), the Pushgateway and a
# compose that validates the compose file offline (`docker compose config`, or Debian's `docker-compose`), and
# Chromium for the canvas's browser test (tests/e2e/test_canvas.py drives it with Playwright; nothing downloads a
# browser).
# Idempotent and quick: it checks the binaries first and calls apt only for what is missing, `apt-get update` at
# most once. Services are not started by the install (policy-rc.d says no while it runs).
# Where apt cannot be used (not root, no apt-get), it says what is missing and exits 0: the tests then skip with
# the reason on a user's machine and fail under CI=true.
set -euo pipefail

declare -A wanted=(
    [nginx]=nginx
    [promtool]=prometheus
    [prometheus-pushgateway]=prometheus-pushgateway
    [chromium]=chromium
)
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
for binary in "${!wanted[@]}"; do
    have "$binary" || missing+=("${wanted[$binary]}")
done
# Compose: the v2 plugin (`docker compose`) if present, else Debian's docker-compose (v1.29, no daemon needed
# for `config`).
if ! { have docker && docker compose version >/dev/null 2>&1; } && ! have docker-compose; then
    missing+=(docker-compose)
fi

# A CJK font, so that the canvas shows (and its screenshots show) Chinese text rather than empty boxes.
if [ ! -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then
    missing+=(fonts-wqy-zenhei)
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "infra tools: all present (nginx, promtool, prometheus-pushgateway, compose, chromium, a CJK font)"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! have apt-get; then
    echo "infra tools: missing ${missing[*]}; install them (apt-get install ${missing[*]}) to run the infra tests" >&2
    exit 0
fi

echo "infra tools: installing ${missing[*]} from Debian's packages"
start=$(date +%s)
# Keep apt from starting nginx, Prometheus or the Pushgateway as services (the tests start their own).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
trap 'if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/install-infra-tools.log 2>&1; }
# The package lists may be absent or stale on a new machine: update once, then retry.
if ! install; then
    apt-get update -q >/tmp/install-infra-tools.update.log 2>&1
    install || { tail -20 /tmp/install-infra-tools.log >&2; exit 1; }
fi
echo "infra tools: installed in $(($(date +%s) - start)) s"
