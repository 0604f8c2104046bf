"""Run the sandbox in its own process, so the client's CPU time is measured alone.

Touches: a loopback port, its stdin/stdout, and a temporary SQLite store, on tmpfs
(``/dev/shm``) when there is one: with the store on disk, the fsync of every committed
update bounds the sandbox at a few hundred requests a second, which would measure this
machine's disk rather than the client.

Child side (``python -m benchmarks.sandbox_proc ...``): starts a
:class:`~spectrum_tools.sandbox.SandboxServer` on ``127.0.0.1`` (a free port), prints one
JSON line ``{"base_url": ...}``, then answers each ``cpu`` line on stdin with
``{"cpu_s": <its process CPU time>}`` and stops at end of input.

Parent side: :class:`SandboxProcess`, a context manager that starts the child, reads and
clears the sandbox's request log, and always stops the child it started.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "benchmark-token"
_START_TIMEOUT_S = 30.0


class SandboxProcess:
    """A sandbox in a child process on a free loopback port.

    Parameters
    ----------
    seed
        CSV of orders (``purchaseOrderNumber, recipeSetId, workflowStatus``).
    latency_s, rate_limit, rate_window_s
        :class:`~spectrum_tools.sandbox.SandboxSettings` fields (``rate_limit=None``: off).
    log_size
        Requests the sandbox's log keeps (its default keeps the last 10,000; a benchmark
        that counts more requests than that in one go needs a bigger log).
    """

    def __init__(
        self,
        seed: Path,
        *,
        latency_s: float = 0.0,
        rate_limit: int | None = None,
        rate_window_s: float = 60.0,
        log_size: int | None = None,
    ) -> None:
        shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private (0700) folder in it
        self._tmp = Path(
            tempfile.mkdtemp(prefix="spectrum-bench-", dir=shm if shm.is_dir() else None)
        )
        self._args = [
            sys.executable,
            "-m",
            "benchmarks.sandbox_proc",
            "--store",
            str(self._tmp / "sandbox.sqlite3"),
            "--seed",
            str(seed),
            "--latency",
            repr(latency_s),
            "--rate-limit",
            "off" if rate_limit is None else str(rate_limit),
            "--window",
            repr(rate_window_s),
            *(["--log-size", str(log_size)] if log_size is not None else []),
        ]
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self._http = requests.Session()
        self._http.trust_env = False

    def __enter__(self) -> SandboxProcess:
        self._proc = subprocess.Popen(
            self._args,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # the child prints it once listening
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError("the sandbox process did not start (see its stderr above)")
        self.base_url = json.loads(line)["base_url"]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.close()
        proc, self._proc = self._proc, None
        if proc is None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            return
        if proc.stdin is not None:
            proc.stdin.close()  # end of input: the child stops its server and exits
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the sandbox process has used so far."""
        assert self._proc is not None and self._proc.stdin and self._proc.stdout
        self._proc.stdin.write("cpu\n")
        self._proc.stdin.flush()
        return float(json.loads(self._proc.stdout.readline())["cpu_s"])

    def requests_log(self) -> list[dict[str, Any]]:
        """The sandbox's request log, oldest first."""
        response = self._http.get(
            self.base_url + "/_sandbox/requests", headers={"SPECTRUM_API_TOKEN": TOKEN}, timeout=30
        )
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()
        return records

    def clear_log(self) -> None:
        """Empty the sandbox's request log."""
        self._http.delete(
            self.base_url + "/_sandbox/requests", headers={"SPECTRUM_API_TOKEN": TOKEN}, timeout=30
        ).raise_for_status()

    def stage(self, po: str, statuses: dict[str, str]) -> None:
        """Set line items of ``po`` directly in the store (as someone else would have): the
        order's last modification becomes now. Not logged, not throttled."""
        self._http.put(
            f"{self.base_url}/_sandbox/orders/{po}",
            json={
                "lineItems": [{"recipeSetId": r, "workflowStatus": s} for r, s in statuses.items()]
            },
            headers={"SPECTRUM_API_TOKEN": TOKEN},
            timeout=30,
        ).raise_for_status()

    def settings(self, **changes: object) -> None:
        """Change fault switches of the running sandbox."""
        self._http.put(
            self.base_url + "/_sandbox/settings",
            json=changes,
            headers={"SPECTRUM_API_TOKEN": TOKEN},
            timeout=30,
        ).raise_for_status()


def machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU time of the whole machine so far, from ``/proc/stat`` (Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [float(v) for v in fields[:8]]  # guest time is already counted in user
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def _main() -> int:
    from spectrum_tools.sandbox import SandboxServer, SandboxSettings
    from spectrum_tools.sandbox.app import RequestLog

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--seed", type=Path, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate-limit", default="off")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--log-size", type=int, default=None)
    args = parser.parse_args()
    limit = None if args.rate_limit == "off" else int(args.rate_limit)
    settings = SandboxSettings(latency_s=args.latency, rate_limit=limit, rate_window_s=args.window)
    for leftover in args.store.parent.glob(args.store.name + "*"):
        leftover.unlink()
    server = SandboxServer(args.store, settings=settings, token=TOKEN, seed_from=args.seed)
    if args.log_size is not None:
        # SandboxServer offers no size for its request log; it hands ``_log`` to the app
        # at start, so a bigger one set before start is the one requests are counted in.
        # The read-back face asserts the counts it reads, so a change here cannot go unseen.
        server._log = RequestLog(maxlen=args.log_size)
    with server:
        print(json.dumps({"base_url": server.base_url}), flush=True)
        for line in sys.stdin:
            if line.strip() == "cpu":
                print(json.dumps({"cpu_s": time.process_time()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
