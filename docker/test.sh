#!/usr/bin/env bash
# Build docker/Dockerfile with podman on a local Debian bookworm base and run the demo batch inside it.
#
# No registry pulls: the base image is a debootstrap root filesystem (python3.11, python3-venv, make) taken
# from the Debian mirror apt uses on this host, imported as localhost/medbench-base:bookworm. The image is
# built with TF_EXTRA=cpu (the gpu extra needs a GPU to be useful) and runs `medbench demo-data` and
# `medbench exec --batch examples/demo-batch.yaml` with data/ logs/ models/ mounted from a scratch folder;
# the test passes when the mounted logs/ holds a finished experiment. Needs root, podman, runc and
# debootstrap (apt-get install debootstrap podman runc) and access to the Debian mirror and PyPI.
#
# Environment: MEDBENCH_DOCKER_WORK (scratch folder, default /var/tmp/medbench-docker-test),
# REBUILD_BASE=1 (debootstrap again even if the base image exists), KEEP_IMAGE=1 (keep the built image).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${MEDBENCH_DOCKER_WORK:-/var/tmp/medbench-docker-test}
BASE_IMAGE=localhost/medbench-base:bookworm
IMAGE=localhost/medbench:test-cpu
IMAGE_UID=1000
# Own image store under $WORK (the host's podman storage is left alone; `rm -rf $WORK` undoes everything).
# cgroupfs: no systemd here. runc with explicit ulimits: the host's nofile/nproc limits cannot be handed to a
# container here ("error setting rlimit type 7: operation not permitted"). Host network: pip needs PyPI.
PODMAN=(podman --root "$WORK/storage" --runroot "$WORK/runroot" --cgroup-manager cgroupfs)
LIMITS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network host)

log() { printf 'docker-test: %s\n' "$*" >&2; }
fail() {
    log "FAILED: $*"
    exit 1
}
seconds_since() { echo $(($(date +%s) - $1)); }

# The Debian mirror apt is configured with here (deb822 .sources or one-line .list files).
debian_mirror() {
    local url
    url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ {uri=$2} /^Suites:/ && / bookworm( |$)/ {print uri; exit}')
    if [[ -z $url ]]; then
        url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}')
    fi
    echo "${url:-http://deb.debian.org/debian}"
}

[[ $(id -u) -eq 0 ]] || fail "run as root (debootstrap and rootful podman need it)"
for tool in podman runc debootstrap; do
    command -v "$tool" > /dev/null || fail "$tool is missing: apt-get install debootstrap podman runc"
done
mkdir -p "$WORK"

if [[ ${REBUILD_BASE:-0} == 1 ]] || ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    mirror=$(debian_mirror)
    log "debootstrap bookworm from $mirror"
    start=$(date +%s)
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3.11,python3-venv,make,ca-certificates,passwd \
        bookworm "$WORK/rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 ||
        fail "debootstrap failed, see $WORK/debootstrap.log"
    # Trust the host's local certificate authorities too (an HTTPS proxy in front of PyPI, for example).
    if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/"
        chroot "$WORK/rootfs" update-ca-certificates > /dev/null
    fi
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' - "$BASE_IMAGE" > /dev/null
    rm -rf "$WORK/rootfs"
    log "base image $BASE_IMAGE ready in $(seconds_since "$start") s"
else
    log "base image $BASE_IMAGE exists (REBUILD_BASE=1 makes it again)"
fi

# The test image goes when the script ends, passed or failed (KEEP_IMAGE=1 keeps it); so do dangling layers.
cleanup() {
    if [[ ${KEEP_IMAGE:-0} != 1 ]]; then
        "${PODMAN[@]}" rmi --force "$IMAGE" > /dev/null 2>&1 || true
    fi
    "${PODMAN[@]}" image prune --force > /dev/null 2>&1 || true
}
trap cleanup EXIT

log "building $IMAGE (TF_EXTRA=cpu)"
start=$(date +%s)
"${PODMAN[@]}" build "${LIMITS[@]}" --pull=never \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg TF_EXTRA=cpu --build-arg UID="$IMAGE_UID" \
    --build-arg GID="$IMAGE_UID" -f "$REPO/docker/Dockerfile" -t "$IMAGE" "$REPO"
build_s=$(seconds_since "$start")
log "build took $build_s s"

# Fresh host folders, owned by the image's user so that it can write to them.
run_dir="$WORK/run"
rm -rf "$run_dir"
mkdir -p "$run_dir/data" "$run_dir/logs" "$run_dir/models"
chown -R "$IMAGE_UID:$IMAGE_UID" "$run_dir"
mounts=(-v "$run_dir/data:/app/data" -v "$run_dir/logs:/app/logs" -v "$run_dir/models:/app/models")

start=$(date +%s)
"${PODMAN[@]}" run --rm "${LIMITS[@]}" "${mounts[@]}" "$IMAGE" demo-data ||
    fail "medbench demo-data failed in the container"
"${PODMAN[@]}" run --rm "${LIMITS[@]}" "${mounts[@]}" "$IMAGE" exec --batch examples/demo-batch.yaml ||
    fail "the demo batch failed in the container; failed runs: $run_dir/logs/failed-experiment-log.json"
run_s=$(seconds_since "$start")
log "demo-data and the demo batch took $run_s s"

entries=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' \
    "$run_dir/logs/unvalidated-experiment-log.json" 2> /dev/null) ||
    fail "no readable log in the mounted logs/: $(ls -A "$run_dir/logs")"
[[ $entries -ge 1 ]] || fail "the mounted log has no entries"
compgen -G "$run_dir/models/*/*/model.keras" > /dev/null || fail "no model.keras in the mounted models/"
log "OK: $entries log entries in the mounted logs/ (build $build_s s, run $run_s s)"
