"""Debian's podman, set up the way this kind of machine needs it, and the
project's images built with it (tests/container/test_images.py).

No image registry is reachable: the base images the Dockerfile starts from
(docker.io/library/debian:bookworm and :bookworm-slim) are made from the
Debian archive with mmdebstrap and imported under those names.  They, and
the build's layer cache, stay in podman's own storage between runs: a base
image is rebuilt only when its recipe (recipe() below) changes, which its
label records.  Only debian:bookworm is made by mmdebstrap; :bookworm-slim
is derived from its tarball (the slim image's dpkg path exclusions applied
to the files, and written to dpkg's configuration as mmdebstrap would), so
the archive is read once.

A fresh machine has just downloaded most of the packages the images need:
scripts/test installed the same build tools and libraries on the host.
mmdebstrap and the image builds take them from the host's apt cache
(/var/cache/apt/archives, never written: hard links into mmdebstrap's
chroot, an overlay volume under podman build) and download only the rest.

Quirks of the machine (/work/shared/CONTAINERS.md): crun refuses the cgroup
layout, so podman uses runc; the session cannot raise rlimits, so podman's
default ulimits are set to values it may use.  Both go in a containers.conf
given through CONTAINERS_CONF, never in /etc.  Builds use the host network
so that apt inside RUN reaches the archive.

Python standard library only.
"""

import fnmatch
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

SOURCE_DIR = os.path.abspath(os.environ.get(
    "DX_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../..")))

WORKERS = ("daily-checker", "file-transformer", "status-checker")
REGISTRY = "docker.io/dataretailx"
TAG = "test"

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""

SUITES = ("deb http://deb.debian.org/debian bookworm main",
          "deb http://deb.debian.org/debian bookworm-updates main",
          "deb http://deb.debian.org/debian-security bookworm-security main")

# What the official slim image leaves out (its dpkg path exclusions).
SLIM_EXCLUSIONS = ("path-exclude=/usr/share/man/*",
                   "path-exclude=/usr/share/doc/*",
                   "path-include=/usr/share/doc/*/copyright",
                   "path-exclude=/usr/share/locale/*",
                   "path-exclude=/usr/share/info/*",
                   "path-exclude=/usr/share/lintian/*",
                   "path-exclude=/usr/share/linda/*",
                   "path-exclude=/usr/share/groff/*")

# The base images the Dockerfile names: the full one made by mmdebstrap, the
# slim one derived from it.  The merged-usr hook is the one the official
# images use; mmdebstrap's default way pulls perl in (+47 MB).
BASE = "docker.io/library/debian:bookworm"
SLIM_BASE = "docker.io/library/debian:bookworm-slim"
MERGED_USR_HOOK = "/usr/share/mmdebstrap/hooks/merged-usr"
RECIPE_LABEL = "org.dataretailx.base-recipe"
# Where mmdebstrap writes its --dpkgopt options inside the image.
DPKG_CFG = "etc/dpkg/dpkg.cfg.d/99mmdebstrap"
# The host's apt cache, read only (see the module comment).
HOST_APT_CACHE = "/var/cache/apt/archives"


def log(msg):
    print(f"[podman] {msg}", file=sys.stderr, flush=True)


def conf_path(workdir):
    """Writes the containers.conf into workdir; returns its path."""
    path = os.path.join(workdir, "containers.conf")
    with open(path, "w") as f:
        f.write(CONTAINERS_CONF)
    return path


class Podman:
    """Runs podman with this suite's containers.conf."""

    def __init__(self, workdir):
        self.env = dict(os.environ, CONTAINERS_CONF=conf_path(workdir))

    def run(self, *args, check=True, capture=True, timeout=None):
        res = subprocess.run(["podman", *args], env=self.env, timeout=timeout,
                             stdout=subprocess.PIPE if capture else None,
                             stderr=subprocess.PIPE if capture else None)
        if check and res.returncode != 0:
            err = res.stderr.decode(errors="replace") if capture else ""
            raise RuntimeError(f"podman {' '.join(args[:3])} ... exited {res.returncode}: "
                               f"{err.strip()[-2000:]}")
        return res

    def out(self, *args, **kwargs):
        return self.run(*args, **kwargs).stdout.decode()

    def label(self, image, name):
        """The value of label name on image, or None (also when image is missing)."""
        res = self.run("image", "inspect", "--format", "{{json .Labels}}", image, check=False)
        if res.returncode != 0:
            return None
        labels = json.loads(res.stdout or b"null") or {}
        return labels.get(name)


def recipe(options):
    """A digest of everything that decides a base image's content."""
    what = {"suites": SUITES, "dpkg": options, "hook": MERGED_USR_HOOK, "variant": "minbase"}
    if options:  # the slim one, derived from the full one's tarball
        what["derived"] = "tar-filter-1"
    text = json.dumps(what)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def host_debs():
    """True when the host's apt cache holds packages to reuse."""
    try:
        return any(n.endswith(".deb") for n in os.listdir(HOST_APT_CACHE))
    except OSError:
        return False


def mmdebstrap_command(tarball):
    cmd = ["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet",
           f"--hook-dir={MERGED_USR_HOOK}"]
    if host_debs():
        # Hard links, so that mmdebstrap's clean-up of its chroot never
        # touches the host's files; none when the chroot is on another file
        # system (then everything is downloaded).
        cmd.append(f'--setup-hook=mkdir -p "$1{HOST_APT_CACHE}" && '
                   f'{{ cp -l {HOST_APT_CACHE}/*.deb "$1{HOST_APT_CACHE}/" 2>/dev/null || true; }}')
    return cmd + ["bookworm", tarball, *SUITES]


def dpkg_filtered(path, rules):
    """True when dpkg's path-exclude/path-include rules leave path out (the
    last matching rule wins; dpkg's globs match across '/')."""
    out = False
    for rule in rules:
        kind, _, glob = rule.partition("=")
        if fnmatch.fnmatchcase(path, glob):
            out = kind == "path-exclude"
    return out


def derive_slim(full_tar, slim_tar, rules=SLIM_EXCLUSIONS):
    """Writes slim_tar: full_tar without the files the rules exclude (a
    directory stays if something kept lies under it), plus the rules in
    dpkg's configuration so that later installs exclude the same paths, as
    an image made with mmdebstrap --dpkgopt would have them."""
    with tarfile.open(full_tar) as src:
        members = src.getmembers()
        paths = {id(m): "/" + m.name.lstrip("./") for m in members}
        # A link into a left-out path goes too (update-alternatives makes
        # none for a missing man page).
        kept = [m for m in members if m.isdir() or not (
            dpkg_filtered(paths[id(m)], rules) or
            (m.issym() and m.linkname.startswith("/") and dpkg_filtered(m.linkname, rules)))]
        needed = set()
        for m in kept:
            if not m.isdir():
                parent = os.path.dirname(paths[id(m)])
                while parent not in needed and parent != "/":
                    needed.add(parent)
                    parent = os.path.dirname(parent)
        kept = [m for m in kept if not m.isdir() or paths[id(m)] in needed or
                not dpkg_filtered(paths[id(m)], rules)]
        cfg = "".join(f"{r}\n" for r in rules).encode()
        with tarfile.open(slim_tar, "w", format=tarfile.PAX_FORMAT) as dst:
            for m in kept:
                if paths[id(m)] == "/" + DPKG_CFG:
                    continue
                dst.addfile(m, src.extractfile(m) if m.isreg() else None)
            info = tarfile.TarInfo("./" + DPKG_CFG)
            info.size, info.mode, info.mtime = len(cfg), 0o644, int(time.time())
            dst.addfile(info, io.BytesIO(cfg))


def import_base(podman, tarball, name, digest):
    podman.run("import", "--change", 'CMD ["bash"]',
               "--change", f"LABEL {RECIPE_LABEL}={digest}", tarball, name)


def make_bases(podman, workdir):
    """Makes the base images from the Debian archive unless podman already
    holds them made from the same recipe: debian:bookworm with mmdebstrap,
    debian:bookworm-slim derived from its tarball."""
    started = time.time()
    full, slim = recipe(()), recipe(SLIM_EXCLUSIONS)
    need_full = podman.label(BASE, RECIPE_LABEL) != full
    need_slim = podman.label(SLIM_BASE, RECIPE_LABEL) != slim
    if not (need_full or need_slim):
        return
    tarball = os.path.join(workdir, "rootfs.tar")
    log(f"making {BASE} with mmdebstrap"
        f"{' (reusing the host apt cache)' if host_debs() else ''}")
    proc = subprocess.Popen(mmdebstrap_command(tarball))
    try:
        code = proc.wait()
    finally:
        # Stopped (SIGTERM from scripts/test): mmdebstrap got it too and
        # removes its chroot (mounts, 1.6 GB of links) before it exits;
        # killing it would leave them.
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if code != 0:
        raise RuntimeError(f"base images not made: mmdebstrap exited {code}")
    log(f"mmdebstrap done in {time.time() - started:.0f}s")
    if need_full:
        import_base(podman, tarball, BASE, full)
        log(f"made {BASE} in {time.time() - started:.0f}s")
    if need_slim:
        slim_tar = os.path.join(workdir, "rootfs-slim.tar")
        derive_slim(tarball, slim_tar)
        import_base(podman, slim_tar, SLIM_BASE, slim)
        os.unlink(slim_tar)
        log(f"made {SLIM_BASE} in {time.time() - started:.0f}s")
    os.unlink(tarball)


def wait_prepared(folder, timeout):
    """Waits for the background run of main() that scripts/test started
    (folder: its DX_CONTAINER_PREP, holding log and, once it ended, rc);
    returns (exit status or None on timeout, seconds waited, its log)."""
    started = time.time()
    rc_path = os.path.join(folder, "rc")
    while not os.path.exists(rc_path) and time.time() - started < timeout:
        time.sleep(1)
    rc = None
    if os.path.exists(rc_path):
        time.sleep(0.2)  # the shell writes rc after the log is closed
        with open(rc_path) as f:
            rc = int(f.read().strip() or "-1")
    try:
        with open(os.path.join(folder, "log"), errors="replace") as f:
            text = f.read()
    except OSError as e:
        text = f"(no log: {e})"
    return rc, time.time() - started, text


def image_name(worker, tag=TAG):
    """The full name stack.yml and the manifests use: under podman a short
    name would become localhost/..."""
    return f"{REGISTRY}/{worker}:{tag}"


def faas_context(worker, workdir):
    """The build context `faas-cli build -f stack.yml` makes for worker: the
    function's handler folder copied, links followed, without its build/ and
    template/, into build/<worker>/ (faas-cli's builder/copy.go).  Returns
    its path."""
    import yaml
    with open(os.path.join(SOURCE_DIR, "stack.yml"), encoding="utf-8") as f:
        fn = yaml.safe_load(f)["functions"][worker]
    handler = os.path.join(SOURCE_DIR, fn["handler"])
    dest = os.path.join(workdir, "build", worker)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    for name in os.listdir(handler):
        if name in ("build", "template"):
            continue
        src = os.path.join(handler, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, name), symlinks=False)
        else:
            shutil.copyfile(src, os.path.join(dest, name))
    return dest, fn["build_args"]


def build_images(podman, workdir, tag=TAG):
    """Builds the three images as `faas-cli build -f stack.yml` does (its
    build context and build_args, podman in place of docker); returns
    {worker: seconds}."""
    times = {}
    for worker in WORKERS:
        started = time.time()
        context, build_args = faas_context(worker, workdir)
        log(f"building {image_name(worker, tag)} from {os.path.relpath(context, workdir)}")
        args = ["build", "--network", "host", "--layers"]
        if host_debs():
            # An overlay: apt inside RUN sees the host's packages, and what it
            # downloads or cleans stays in the build's container.
            args += ["-v", f"{HOST_APT_CACHE}:{HOST_APT_CACHE}:O"]
        for k, v in sorted(build_args.items()):
            args += ["--build-arg", f"{k}={v}"]
        podman.run(*args, "-t", image_name(worker, tag), context, capture=False)
        shutil.rmtree(context)
        times[worker] = time.time() - started
        log(f"built {image_name(worker, tag)} in {times[worker]:.0f}s")
    return times


def main():
    """By hand: python3 tests/container/podman.py  (bases + the three images).
    scripts/test runs it in the background; SIGTERM, when it stops it, ends
    it through the clean-ups (the temporary folder, mmdebstrap killed)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="dx-podman-") as workdir:
        podman = Podman(workdir)
        make_bases(podman, workdir)
        build_images(podman, workdir)
    log(f"bases and images ready in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
