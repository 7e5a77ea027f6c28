#!/usr/bin/env bash
# `make image`: builds infra/docker/Dockerfile as open-autoglm:latest (IMAGE=... to change), from the repository root.
#
# Where a registry answers, it is the plain build on the public python image. Where none does (this project's
# machines reach only PyPI, Debian's packages and npm), it builds on a base made from Debian's packages
# (make-base-image.sh) from a wheelhouse made on the host with pip (infra/docker/wheels), with `--network none`.
# A Docker daemon is needed; as root without one, it starts `dockerd` (overlay2, else vfs; installing Debian's
# docker.io if missing) and says so: `make docker-stop` stops that daemon again.
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${IMAGE:-open-autoglm:latest}
base_public=${BASE_IMAGE:-python:3.11-slim-bookworm}
base_local=open-autoglm-base:bookworm
python=${PYTHON:-.venv/bin/python}
dockerd_pid=/run/open-autoglm-dockerd.pid
log() { echo "make image: $*"; }

# A client that builds with BuildKit (the Dockerfile's RUN --mount and per-Dockerfile ignore file need it):
# the buildx plugin, or a client before 23.0 (Debian's docker.io 20.10) with DOCKER_BUILDKIT=1.
pick_client() {
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

if ! pick_client || ! "$docker" info >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "no Docker daemon answers; start one (or run as root to start one here)" >&2; exit 1; }
    if ! command -v dockerd >/dev/null 2>&1; then
        log "installing Debian's docker.io"
        t=$(date +%s)
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >/tmp/docker-io.log 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -q --no-install-recommends docker.io >/tmp/docker-io.log 2>&1; }
        log "docker.io installed in $(($(date +%s) - t)) s"
    fi
    pick_client || { echo "no Docker client that builds with BuildKit (install docker-buildx)" >&2; exit 1; }
    # overlay2 shares the image's layers between containers (seconds to create one); vfs copies the whole image
    # for each container and layer (minutes, and ~3 GB each, on this image) and is the fallback where the kernel or
    # the backing file system has no overlay (a daemon that cannot use it exits at once).
    for driver in overlay2 vfs; do
        log "starting dockerd --storage-driver=$driver (pid file $dockerd_pid; make docker-stop stops it)"
        nohup nice -n 10 dockerd --storage-driver=$driver --pidfile "$dockerd_pid" >/var/log/open-autoglm-dockerd.log 2>&1 &
        for _ in $(seq 60); do
            "$docker" info >/dev/null 2>&1 && break 2
            kill -0 $! 2>/dev/null || break
            sleep 1
        done
        log "dockerd did not start with $driver: $(tail -1 /var/log/open-autoglm-dockerd.log)"
    done
    "$docker" info >/dev/null 2>&1 || { tail -20 /var/log/open-autoglm-dockerd.log >&2; exit 1; }
fi

args=(-f infra/docker/Dockerfile -t "$image")
if "$docker" image inspect "$base_public" >/dev/null 2>&1 || timeout 120 "$docker" pull -q "$base_public" >/dev/null 2>&1; then
    log "building on $base_public"
    args+=(--build-arg "BASE_IMAGE=$base_public")
else
    log "no registry answers for $base_public: building offline on $base_local"
    bash infra/docker/make-base-image.sh "$base_local"
    [ -x "$python" ] || { echo "$python is missing: make install first (its pip makes the wheelhouse)" >&2; exit 1; }
    t=$(date +%s)
    # The same set as `make install`, less the dev extra, as wheels: from the wheelhouse alone when it has them all
    # (seconds), else from the package index (minutes; those already there are reused). async-timeout: redis needs it
    # below Python 3.11.3, and Debian's is 3.11.2 (the host's pip resolves for its own 3.11.7).
    wheel() {
        nice -n 10 "$python" -m pip --disable-pip-version-check wheel -q -w infra/docker/wheels "$@" \
            --find-links infra/docker/wheels -c constraints.txt torch==2.13.0 "setuptools>=77" ".[english]" \
            "async-timeout>=4.0.3" 2>&1 \
            | { grep -v "is ignored: it is neither" || true; }
    }
    wheel --no-index >/dev/null 2>&1 || wheel
    rm -f infra/docker/wheels/open_autoglm-*.whl  # the image installs the project from its source
    log "wheelhouse: $(find infra/docker/wheels -name '*.whl' | wc -l) wheels, $(du -sh infra/docker/wheels | cut -f1), $(($(date +%s) - t)) s"
    args+=(--network none --build-arg "BASE_IMAGE=$base_local" --build-arg BUILD_PACKAGES= --build-arg RUNTIME_PACKAGES=
        --build-arg "PIP_OFFLINE=--no-index --find-links /wheels")
fi

t=$(date +%s)
if ! nice -n 10 "${build[@]}" "${args[@]}" --progress plain . 2>&1 | tee /tmp/open-autoglm-image-build.log \
    | { grep -E '^#[0-9]+ (\[|DONE|ERROR)|^ERROR|error:' || true; }; then
    tail -30 /tmp/open-autoglm-image-build.log >&2
    exit 1
fi
size=$("$docker" image inspect -f '{{.Size}}' "$image")
log "$image built in $(($(date +%s) - t)) s, $((size / 1000000)) MB (log: /tmp/open-autoglm-image-build.log)"
