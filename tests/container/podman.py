"""Debian's podman, set up the way this kind of machine needs it, and the
project's images built with it (tests/container/test_images.py).

No image registry is reachable: the base images the Dockerfile starts from
(docker.io/library/debian:bookworm and :bookworm-slim) are made from the
Debian archive with mmdebstrap and imported under those names.  They, and
the build's layer cache, stay in podman's own storage between runs: a base
image is rebuilt only when its recipe (RECIPE below) changes, which its
label records.

Quirks of the machine (/work/shared/CONTAINERS.md): crun refuses the cgroup
layout, so podman uses runc; the session cannot raise rlimits, so podman's
default ulimits are set to values it may use.  Both go in a containers.conf
given through CONTAINERS_CONF, never in /etc.  Builds use the host network
so that apt inside RUN reaches the archive.

Python standard library only.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
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

# The base images: name -> dpkg options.  The merged-usr hook is the one the
# official images use; mmdebstrap's default way pulls perl in (+47 MB).
BASES = {
    "docker.io/library/debian:bookworm": (),
    "docker.io/library/debian:bookworm-slim": SLIM_EXCLUSIONS,
}
MERGED_USR_HOOK = "/usr/share/mmdebstrap/hooks/merged-usr"
RECIPE_LABEL = "org.dataretailx.base-recipe"


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
    text = json.dumps({"suites": SUITES, "dpkg": options, "hook": MERGED_USR_HOOK,
                       "variant": "minbase"})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mmdebstrap_command(options, tarball):
    cmd = ["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet",
           f"--hook-dir={MERGED_USR_HOOK}"]
    cmd += [f"--dpkgopt={opt}" for opt in options]
    return cmd + ["bookworm", tarball, *SUITES]


def make_bases(podman, workdir):
    """Makes each base image from the Debian archive unless podman already
    holds one made from the same recipe; the missing ones are made side by
    side (mostly unpacking: two cores, two images)."""
    started = time.time()
    jobs = []
    for i, (name, options) in enumerate(BASES.items()):
        digest = recipe(options)
        if podman.label(name, RECIPE_LABEL) == digest:
            continue
        tarball = os.path.join(workdir, f"rootfs-{i}.tar")
        log(f"making {name} with mmdebstrap (not in podman's storage yet)")
        jobs.append((name, digest, tarball,
                     subprocess.Popen(mmdebstrap_command(options, tarball))))
    failed = []
    try:
        for name, digest, tarball, proc in jobs:
            if proc.wait() != 0:
                failed.append(f"{name} (mmdebstrap exited {proc.returncode})")
                continue
            podman.run("import", "--change", 'CMD ["bash"]',
                       "--change", f"LABEL {RECIPE_LABEL}={digest}", tarball, name)
            os.unlink(tarball)
            log(f"made {name} in {time.time() - started:.0f}s")
    finally:
        for _, _, _, proc in jobs:  # only when the loop was left early
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if failed:
        raise RuntimeError("base images not made: " + ", ".join(failed))


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
        for k, v in sorted(build_args.items()):
            args += ["--build-arg", f"{k}={v}"]
        podman.run(*args, "-t", image_name(worker, tag), context, capture=False)
        shutil.rmtree(context)
        times[worker] = time.time() - started
        log(f"built {image_name(worker, tag)} in {times[worker]:.0f}s")
    return times


def main():
    """By hand: python3 tests/container/podman.py  (bases + the three images)."""
    with tempfile.TemporaryDirectory(prefix="dx-podman-") as workdir:
        podman = Podman(workdir)
        make_bases(podman, workdir)
        build_images(podman, workdir)


if __name__ == "__main__":
    main()
