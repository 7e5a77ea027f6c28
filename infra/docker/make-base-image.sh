#!/usr/bin/env bash
# Builds a Python 3.11 base image from Debian's packages, for machines that reach Debian's archive but no container
# registry: debootstrap (minbase) with python3, venv, libgomp1, tini and CA certificates, then `docker import`.
# Usage: infra/docker/make-base-image.sh [TAG [PACKAGE...]]   (root; a Docker daemon running; debootstrap is
#   installed from Debian's packages where missing: scripts/ensure-tools.sh)
#   default TAG open-autoglm-base:bookworm; PACKAGEs are added to the base set (the local compose stack's services
#   image adds postgresql, redis, nginx, prometheus and the Pushgateway: infra/compose.local.yaml).
# The Debian mirror and suite are the machine's own (its apt sources and /etc/os-release), so nothing here names a
# host. The image answers the Dockerfile's needs the way python:3.11-slim-bookworm does: `python3`, `python3 -m
# venv`, and the runtime packages already present (the Dockerfile installs with apt only what is missing).
set -euo pipefail
tag=${1:-open-autoglm-base:bookworm}
shift || true
include=python3,python3-venv,libgomp1,tini,ca-certificates
for package in "$@"; do include+=",$package"; done
docker=${DOCKER:-docker}

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag: present"
    exit 0
fi
bash "$(dirname "$0")/../../scripts/ensure-tools.sh" --for "base image $tag" debootstrap

# shellcheck disable=SC1091
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $3 == "'"$suite"'" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "no Debian mirror found in the apt sources" >&2; exit 1; }

root=$(mktemp -d /var/tmp/open-autoglm-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$(date +%s)
echo "base image $tag: debootstrap $suite (minbase + $include) into $root"
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -30 "$root.log" >&2; exit 1; }
# Smaller: no package lists, caches, documentation or locales beyond C.UTF-8.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
chmod 0755 "$root"  # mktemp made it 0700: it becomes the image's /, which every user must traverse
tar --numeric-owner -C "$root" -c . | "$docker" import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["python3"]' -m "debootstrap $suite minbase + python3" - "$tag" >/dev/null
rm -f "$root.log"
echo "base image $tag: built in $(($(date +%s) - start)) s, $("$docker" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
