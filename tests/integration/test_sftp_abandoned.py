"""No temporary file of a failed write stays in an sftp:// depot (issue 11, §9).

A file-transformer writing a large drop into the depot over SFTP (a real
sshd) is killed with SIGKILL in the middle of the write: its hidden
temporary files (.input.csv.tmp-..., .input.rejects.csv.tmp-...) stay on
the server, and no process remembers them.  A new transformer gets the
event again (ACK_WAIT=3) and completes the run; once its own outputs are
committed, the earlier attempt's temporary files are gone, and the outputs
are byte-identical to `file-transformer clean`.
"""

import json
import os
import signal
import sys

import faultlib
import harness

DATE = "2026-11-24"
ROWS = 400_000  # about 35 MB: long enough to be killed mid-write


def main():
    t = harness.TestRun("test_sftp_abandoned")
    with faultlib.sftp_pipeline(t, "sftp-abandoned", ACK_WAIT="3", MAX_DELIVER="10") as (p, _s):
        big = faultlib.write_orders(os.path.join(p.workdir, "big.csv"), ROWS, prefix="K")
        ref_out, ref_rejects = faultlib.clean_reference(big, p.workdir, "big")
        faultlib.copy_drop(p, "US5", "input.csv", big)
        p.start_nats()
        first = p.start_worker("file-transformer", log_name="file-transformer-1")
        c = p.client()
        try:
            c.publish("orders.order-date", json.dumps({"order_date": DATE, "client_id": "US5"}))
        finally:
            c.close()
        harness.wait_until(lambda: len(faultlib.temp_files(p.depot)) >= 2, timeout=60,
                           interval=0.005, what="both temporary files being written")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        left = faultlib.temp_files(p.depot)
        t.check(len(left) >= 2, f"the killed writer left its temporary files ({left})")
        second = p.start_worker("file-transformer", log_name="file-transformer-2")
        archived = os.path.join(p.inbox, "US5", "archive", DATE, "input.csv")
        harness.wait_until(lambda: os.path.exists(archived), timeout=120,
                           what="the run completed by the second transformer")
        ready = harness.log_records(second, "file ready")
        t.check(len(ready) == 1, f"the second transformer completed the run ({len(ready)})")
        outputs = [os.path.join(p.depot, r["output"]) for r in ready[:1]]
        rejects = [os.path.join(p.depot, r["rejects"]) for r in ready[:1]]
        t.check(outputs and os.path.isfile(outputs[0]) and
                faultlib.sha256_file(outputs[0]) == faultlib.sha256_file(ref_out),
                "the clean file is byte-identical to file-transformer clean")
        t.check(rejects and os.path.isfile(rejects[0]) and
                faultlib.sha256_file(rejects[0]) == faultlib.sha256_file(ref_rejects),
                "the rejects file is byte-identical to file-transformer clean")
        still = faultlib.temp_files(p.depot)
        t.check(still == [], f"no temporary file stays in the depot ({still})")
        removed = [r for r in harness.log_records(second)
                   if str(r.get("msg", "")).startswith(("storage ", "removed abandoned"))
                   and "abandoned temporary file" in str(r.get("msg", ""))]
        t.check(len(removed) == len(left),
                f"each one removed with a log line ({len(removed)} for {len(left)})")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
