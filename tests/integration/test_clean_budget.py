#!/usr/bin/env python3
"""CLEAN_MEMORY_MB through the real `file-transformer clean` binary.

- A drop whose duplicate set outgrows a 5 MiB budget (about 500,000 distinct
  rows) spills to TMPDIR and gives the very bytes of the run that keeps the
  set in memory, with a lower peak RSS, and leaves nothing in TMPDIR.
- A TMPDIR that does not exist fails the file with one line naming the
  spill file, and no output file appears.
- A malformed CLEAN_MEMORY_MB is refused at start: exit 2, one line naming
  the variable.
Python standard library only.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import faultlib
import harness


def clean(src, out, rejects, **env):
    """Runs `file-transformer clean` under GNU time (Debian's `time`), a
    small program that forks and execs it: a peak RSS read in python (a
    fork of python, then exec) would include python's own pages, which
    linux keeps in the child's ru_maxrss across exec and which are more
    than the lean `clean` uses.  Returns (exit code, output text, peak RSS
    in KiB)."""
    with tempfile.NamedTemporaryFile(prefix="dx-clean-rss-") as rss:
        res = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name,
                              harness.binary("file-transformer"), "clean", src, out, rejects],
                             env={**os.environ, **env}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=300)
        text = rss.read().decode().split()
    return (res.returncode, res.stdout.decode(errors="replace").strip(),
            int(text[-1]) if text and text[-1].isdigit() else 0)


def main():
    t = harness.TestRun("test_clean_budget")
    work = tempfile.mkdtemp(prefix="dx-clean-budget-")
    try:
        spill = os.path.join(work, "spill")
        os.mkdir(spill)
        src = faultlib.write_orders(os.path.join(work, "big.csv"), 500000)
        outs = {}
        for name, env in (("memory", {"CLEAN_MEMORY_MB": "4096"}),
                          ("spilled", {"CLEAN_MEMORY_MB": "5", "TMPDIR": spill})):
            out = os.path.join(work, f"{name}.csv")
            rejects = os.path.join(work, f"{name}.rejects.csv")
            code, text, rss = clean(src, out, rejects, **env)
            t.check(code == 0, f"{name}: clean exits 0 ({code}: {text[-200:]!r})")
            outs[name] = (faultlib.sha256_file(out) if code == 0 else name,
                          faultlib.sha256_file(rejects) if code == 0 else name, rss)
            print(f"figure: {name}: peak RSS {rss / 1024:.1f} MB", flush=True)
        t.check(outs["memory"][:2] == outs["spilled"][:2],
                "the spilled run's output and rejects are the in-memory run's, byte for byte")
        # ASan's quarantine keeps freed blocks resident (256 MB by default), so
        # a few MiB of difference says nothing there: the normal build checks it.
        if harness.built_with_asan(harness.binary("file-transformer")):
            print("not checked under ASan: the spilled run's lower peak RSS", flush=True)
        else:
            t.check(outs["spilled"][2] + 3072 < outs["memory"][2],
                    f"the spilled run's peak RSS is lower by more than 3 MiB "
                    f"({outs['spilled'][2]} KiB against {outs['memory'][2]} KiB)")
        t.check(os.listdir(spill) == [], f"nothing left in TMPDIR ({os.listdir(spill)})")

        out = os.path.join(work, "nowhere.csv")
        code, text, _ = clean(src, out, out + ".rejects", CLEAN_MEMORY_MB="5",
                              TMPDIR=os.path.join(work, "missing"))
        t.check(code == 1 and "spill file" in text and len(text.splitlines()) == 1,
                f"a TMPDIR that does not exist fails the file in one line ({code}: {text!r})")
        t.check(not os.path.exists(out) and not os.path.exists(out + ".rejects"),
                "and no output file appears")

        for bad in ("0", "24MB", "-3"):
            code, text, _ = clean(src, out, out + ".rejects", CLEAN_MEMORY_MB=bad)
            t.check(code == 2 and "CLEAN_MEMORY_MB" in text and len(text.splitlines()) == 1,
                    f"CLEAN_MEMORY_MB={bad}: exit 2, one line naming it ({code}: {text!r})")
    except Exception as e:
        t.check(False, f"exception: {e!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
