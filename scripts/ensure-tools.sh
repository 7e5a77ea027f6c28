#!/usr/bin/env bash
# The one place that makes sure the tools a make target needs are on the machine: each is checked; what is missing
# is installed from Debian's packages (as root, with apt-get); what still cannot be had is named in one line that
# says what to do, and the exit is 1 (0 with --soft).
#
# Usage: scripts/ensure-tools.sh [--for WHO] [--soft] [--without WHAT] TOOL...
#   --for WHO       who needs them, the start of every line it prints ("make image")
#   --soft          a tool that cannot be installed here (not root, no apt-get) is named, and the exit is 0: the
#                   caller goes on without it (tests then skip with the reason, and fail under CI=true)
#   --without WHAT  what happens without the tool, appended to that line ("the web canvas (/ui) is not built")
#   TOOL            a name in the table below; an unknown name is an error (exit 2)
#
# Silent when all are present (a few milliseconds). Idempotent: apt is called only for what is missing, in one
# `apt-get install`, with `apt-get update` once if that fails (the package lists may be absent or stale on a new
# machine); it waits for another apt's lock rather than failing. Services are not started by the install
# (policy-rc.d says no while it runs). An install that leaves a tool missing is an error, soft or not.
set -euo pipefail

# TOOL -> Debian package ("" where Debian has no fitting one: the hint says where to get it).
declare -A package=(
    [python]=python3                 # Python >= 3.11 ($PYTHON, else python3.11 or python3); bookworm's is 3.11
    [venv]=python3-venv              # `python -m venv` with pip (Debian splits ensurepip out of python3)
    [docker]=docker.io               # a Docker daemon answering, or dockerd to start one (make image does, as root)
    [debootstrap]=debootstrap        # the offline base image (infra/docker/make-base-image.sh)
    [compose]=docker-compose         # the v2 plugin (`docker compose`) or Debian's docker-compose 1.29
    [openssl]=openssl                # make stack-test's JWT key pair
    [git]=git
    [make]=make                      # the README's own prerequisite (no target can install it)
    [nginx]=nginx
    [promtool]=prometheus
    [pushgateway]=prometheus-pushgateway
    [redis-server]=redis-server
    [chromium]=chromium              # the canvas's browser test and benchmark (Playwright drives it)
    [kubectl]=kubernetes-client      # `kubectl kustomize` over infra/k8s (tests/unit/test_infra.py)
    [cjk-font]=fonts-wqy-zenhei      # Chinese text in the canvas's screenshots rather than empty boxes
    [npm]=""                         # Node >= 20.19 with npm (Vite 8); Debian bookworm's nodejs is 18
)
declare -A hint=(
    [python]="or set PYTHON=/path/to/python3.11"
    [npm]="install Node >= 20.19 with npm (nodejs.org or NodeSource; Debian bookworm's nodejs 18 is too old for Vite 8)"
)

who=ensure-tools
soft=0
without=""
tools=()
while [ $# -gt 0 ]; do
    case $1 in
        --for) who=$2; shift 2 ;;
        --soft) soft=1; shift ;;
        --without) without=$2; shift 2 ;;
        -*) echo "ensure-tools: unknown option $1" >&2; exit 2 ;;
        *) tools+=("$1"); shift ;;
    esac
done
for tool in "${tools[@]}"; do
    [ -n "${package[$tool]+set}" ] || { echo "ensure-tools: unknown tool '$tool' (known: $(printf "%s\n" "${!package[@]}" | sort | xargs))" >&2; exit 2; }
done

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
python_bin() { local p=${PYTHON:-}; echo "${p:-$(command -v python3.11 || command -v python3 || echo python3)}"; }

present() {
    case $1 in
        python) "$(python_bin)" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ;;
        venv) "$(python_bin)" -c 'import ensurepip, venv' 2>/dev/null ;;
        docker) { have docker && timeout 20 docker info >/dev/null 2>&1; } || have dockerd ;;
        compose) { have docker && docker compose version >/dev/null 2>&1; } || have docker-compose ;;
        pushgateway) have prometheus-pushgateway ;;
        cjk-font) [ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] ;;
        npm) have npm && node -e 'const [a, b] = process.versions.node.split(".").map(Number);
                                  process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null ;;
        *) have "$1" ;;
    esac
}

# One line for each group of tools that cannot be had here; the exit status comes at the end.
status=0
cannot() {
    local names=$1 advice=$2 verb=is
    [[ $names == *" "* ]] && verb=are
    echo "$who: ${names// /, } $verb missing: $advice${without:+ — $without}" >&2
    [ "$soft" = 1 ] || status=1
}

missing=()
for tool in "${tools[@]}"; do
    present "$tool" || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

aptable=() packages=() extra=""
for tool in "${missing[@]}"; do
    if [ -n "${package[$tool]}" ]; then
        aptable+=("$tool"); packages+=("${package[$tool]}"); extra+="${hint[$tool]:+ (${hint[$tool]})}"
    else
        cannot "$tool" "${hint[$tool]}"
    fi
done
[ ${#aptable[@]} -eq 0 ] && exit $status
if ! have apt-get; then
    cannot "${aptable[*]}" "install ${packages[*]} (Debian's package names; no apt-get here)$extra"
    exit $status
fi
if [ "$(id -u)" != 0 ]; then
    cannot "${aptable[*]}" "run as root or \`apt-get install ${packages[*]}\`$extra"
    exit $status
fi

echo "$who: installing ${packages[*]} from Debian's packages"
start=$(date +%s)
log=/tmp/ensure-tools.$$.log
# Keep apt from starting nginx, dockerd, Prometheus or Redis as services (the targets start their own).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
trap 'if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
export DEBIAN_FRONTEND=noninteractive
apt_install() {
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${packages[@]}" >>"$log" 2>&1
}
if ! apt_install; then
    apt-get update -q -o DPkg::Lock::Timeout=600 >>"$log" 2>&1 || true
    if ! apt_install; then
        tail -5 "$log" | sed "s/^/$who: apt: /" >&2
        echo "$who: \`apt-get install ${packages[*]}\` failed (log: $log)" >&2
        exit 1
    fi
fi
still=()
for tool in "${aptable[@]}"; do present "$tool" || still+=("$tool"); done
if [ ${#still[@]} -gt 0 ]; then
    echo "$who: ${still[*]} still missing after \`apt-get install ${packages[*]}\`$extra (log: $log)" >&2
    exit 1
fi
rm -f "$log"
echo "$who: installed ${packages[*]} in $(($(date +%s) - start)) s"
exit $status
