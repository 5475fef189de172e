# Shared by scripts/demo and scripts/test: idempotent package installs and
# the meson build.  Sourced, not executed.

DX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and running the workers needs.
DX_PACKAGES_BUILD="gcc libc6-dev pkg-config meson ninja-build protobuf-c-compiler libprotobuf-c-dev
  libnats-dev libcjson-dev libcsv-dev libmicrohttpd-dev libssh-dev libssl-dev libxxhash-dev
  tzdata python3 nats-server openssh-server openssh-client procps"

# What the whole test suite needs on top (sanitizers, fuzzing, Prometheus,
# Chromium, the pandas reference of the benchmark, manifest validation, the
# openssl command that makes test_edges's certificates).
DX_PACKAGES_TEST="clang libclang-rt-14-dev prometheus chromium python3-yaml binutils
  valgrind util-linux openssl strace python3-pandas time"

# What the container suite needs (tests/container): Debian's podman with
# runc (crun refuses this kind of VM's cgroup layout), mmdebstrap for the
# base images, and what rootless podman uses when not run as root.
DX_PACKAGES_CONTAINER="podman runc mmdebstrap uidmap slirp4netns fuse-overlayfs"

dx_log() {
    printf '==> %s\n' "$*" >&2
}

# Installs the Debian packages that are missing; quick when none are.
dx_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    dx_log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# Configures (once) and builds the build directory $1 with meson options $2...
dx_build() {
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$DX_ROOT" "$@" >/dev/null
    fi
    ninja -C "$dir" >/dev/null
}
