#!/usr/bin/env bash
# `make infra-tools` (run by `make test` and `.ci/run`): the tools the infra tests run, from Debian's packages when
# missing (as root; scripts/ensure-tools.sh): nginx (`nginx -t`, tests/unit/test_infra.py), promtool (from
# `prometheus`), the Pushgateway (tests/integration/test_run_metrics.py), a compose that validates the compose file
# offline (`docker compose config`, or Debian's `docker-compose`), kubectl (`kubectl kustomize` over infra/k8s,
# from `kubernetes-client`), redis-server (tests/integration/test_faults.py),
# and Chromium with a CJK font for the canvas's browser test (tests/e2e/test_canvas.py drives it with Playwright;
# nothing downloads a browser).
# Where they cannot be installed (not root, no apt-get) it names them in one line and exits 0: the tests then skip
# with the reason on a user's machine and fail under CI=true.
exec bash "$(dirname "$0")/ensure-tools.sh" --for "infra tools" --soft \
    --without "the tests that run them skip (and fail under CI=true)" \
    nginx promtool pushgateway compose kubectl redis-server chromium cjk-font
