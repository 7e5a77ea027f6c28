#!/usr/bin/env bash
# A Docker client that builds with BuildKit and a daemon that answers it; sourced by build-image.sh (`make image`),
# run by scripts/fresh_check.py (`make fresh-check`), which reads the client's path from its last line.
# As root with no daemon answering, it starts `dockerd` (overlay2, else vfs), after installing Debian's docker.io
# where dockerd is missing (scripts/ensure-tools.sh), and says so: `make docker-stop` stops that daemon again.
# Sets: docker (the client) and build (the build command: the buildx plugin, or DOCKER_BUILDKIT=1 with a client
# before 23.0, such as Debian's docker.io 20.10; a newer client without buildx refuses to build).
dockerd_pid=/run/open-autoglm-dockerd.pid

pick_client() {
    local c major
    for c in docker /usr/bin/docker; do
        command -v "$c" >/dev/null 2>&1 || continue
        if "$c" buildx version >/dev/null 2>&1; then build=("$c" buildx build --load); docker=$c; return 0; fi
        major=$("$c" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)
        if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then
            build=(env DOCKER_BUILDKIT=1 "$c" build); docker=$c; return 0
        fi
    done
    return 1
}

ensure_docker_daemon() {
    local who=${1:-docker} driver
    if pick_client && "$docker" info >/dev/null 2>&1; then return 0; fi
    [ "$(id -u)" = 0 ] || { echo "$who: no Docker daemon answers; start one (or run as root to start one here)" >&2; return 1; }
    bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/ensure-tools.sh" --for "$who" docker || return 1
    pick_client || { echo "$who: no Docker client that builds with BuildKit (install docker-buildx)" >&2; return 1; }
    # overlay2 shares the image's layers between containers (seconds to create one); vfs copies the whole image
    # for each container and layer (minutes, and ~3 GB each, on this image) and is the fallback where the kernel or
    # the backing file system has no overlay (a daemon that cannot use it exits at once).
    for driver in overlay2 vfs; do
        echo "$who: starting dockerd --storage-driver=$driver (pid file $dockerd_pid; make docker-stop stops it)"
        nohup nice -n 10 dockerd --storage-driver=$driver --pidfile "$dockerd_pid" >/var/log/open-autoglm-dockerd.log 2>&1 &
        for _ in $(seq 60); do
            "$docker" info >/dev/null 2>&1 && return 0
            kill -0 $! 2>/dev/null || break
            sleep 1
        done
        echo "$who: dockerd did not start with $driver: $(tail -1 /var/log/open-autoglm-dockerd.log)"
    done
    tail -20 /var/log/open-autoglm-dockerd.log >&2
    return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    ensure_docker_daemon "${1:-docker}" >&2
    echo "$docker"
fi
