#!/usr/bin/env bash
# `make image`: builds infra/docker/Dockerfile as open-autoglm:latest (IMAGE=... to change), from the repository root.
#
# Where a registry answers, it is the plain build on the public python image. Where none does (this project's
# machines reach only PyPI, Debian's packages and npm), it builds on a base made from Debian's packages
# (make-base-image.sh) from a wheelhouse made on the host with pip (infra/docker/wheels), with `--network none`.
# A Docker daemon is needed; as root without one, it starts `dockerd` (overlay2, else vfs; installing Debian's
# docker.io if missing: docker-daemon.sh) and says so: `make docker-stop` stops that daemon again. The tools it needs
# (docker.io where no daemon answers, debootstrap where no registry does) come from scripts/ensure-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${IMAGE:-open-autoglm:latest}
base_public=${BASE_IMAGE:-python:3.11-slim-bookworm}
base_local=open-autoglm-base:bookworm
python=${PYTHON:-.venv/bin/python}
log() { echo "make image: $*"; }

# shellcheck source=infra/docker/docker-daemon.sh
. infra/docker/docker-daemon.sh
ensure_docker_daemon "make image"

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
        nice -n 10 "$python" -m pip --disable-pip-version-check wheel -q --use-pep517 -w infra/docker/wheels "$@" \
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
