#!/usr/bin/env python3
"""The runtime image has every shared library the workers need.

The Dockerfile's runtime stage installs a fixed list of Debian packages
(no -dev packages).  This test reads that list, reads the DT_NEEDED entries
of the worker binaries just built by meson on this Debian bookworm machine
(the same distribution as the image's build stage), finds the Debian package
that ships each library (dpkg -S) and checks that it is in the list or is
part of every Debian image (Priority: required, e.g. libc6).  A package in
the list that no binary needs is reported, not failed: the workers are still
growing into their dependencies.

Usage: test_runtime_libs.py --dockerfile PATH BINARY...
"""

import argparse
import os
import re
import subprocess
import sys


def runtime_packages(dockerfile):
    with open(dockerfile, encoding="utf-8") as fh:
        lines = fh.read().replace("\\\n", " ").splitlines()
    instr = [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]
    # Every stage after the first (the build stage) is part of the runtime
    # image: runtime-base installs the packages, runtime adds the worker.
    froms = [i for i, l in enumerate(instr) if l.upper().startswith("FROM ")]
    pkgs = set()
    for l in instr[froms[1] if len(froms) > 1 else froms[0]:]:
        if "apt-get install" in l:
            words = l.split("apt-get install", 1)[1].split("&&")[0].split()
            pkgs.update(w for w in words if not w.startswith("-"))
    return pkgs


def needed_paths(binary):
    """{soname: resolved path} from ldd, restricted to DT_NEEDED entries."""
    dyn = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"^\s*NEEDED\s+(\S+)", dyn, re.M)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    return {n: resolved.get(n) for n in needed}


def package_of(path):
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            candidates.append("/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def base_image_packages():
    """Packages every Debian image has: the Essential ones and what they
    depend on directly (libc6, libgcc-s1, zlib1g, ...)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Essential}\t${Priority}\t${Pre-Depends}, ${Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    base = set()
    for line in out.splitlines():
        pkg, essential, priority, deps = (line.split("\t") + ["", "", ""])[:4]
        if essential == "yes" or priority == "required":
            base.add(pkg)
            base.update(re.findall(r"(?:^|[,|]\s*)([a-z0-9][a-z0-9+.-]+)", deps))
    return base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dockerfile", required=True)
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    passed = failed = 0
    listed = runtime_packages(a.dockerfile)
    base = base_image_packages()
    used = set()
    for b in a.binaries:
        name = os.path.basename(b)
        if not os.access(b, os.X_OK):
            print(f"FAIL {name}: not built ({b})")
            failed += 1
            continue
        for soname, path in sorted(needed_paths(b).items()):
            pkg = package_of(path) if path else None
            if pkg is None:
                print(f"FAIL {name}: {soname} not found on this system or not from a Debian package")
                failed += 1
                continue
            pkg = pkg.split(":")[0]
            used.add(pkg)
            if pkg in listed or pkg in base:
                print(f"ok   {name}: {soname} from {pkg}")
                passed += 1
            else:
                print(f"FAIL {name}: {soname} comes from {pkg}, which the Dockerfile's runtime stage does not install")
                failed += 1
    for pkg in sorted(listed - used - {"tzdata", "ca-certificates"}):
        print(f"note runtime package {pkg} is not needed by the binaries built now")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
