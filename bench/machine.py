"""The box under a benchmark: CPU by process, a speed probe, free ports (bench/ only)."""

import os
import resource
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)



def calibrate() -> float:
    """ms for a fixed pure-Python loop: this VM's speed drifts (host contention), so each level says how fast it was."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        x = 0
        for i in range(1_000_000):
            x += i
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces: split after the closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def proc_cpu_ticks(pid: int, *, children: bool = False) -> int:
    fields = proc_stat(pid)
    if fields is None:
        return 0
    # fields[0] is state (field 3); utime=14, stime=15, cutime=16, cstime=17
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def pids_by_comm(names: tuple[str, ...]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def children_of(ppid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields and int(fields[1]) == ppid:
                kids.append(int(entry.name))
    return kids


def total_cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class CpuSample:
    at: float
    gunicorn: int
    front: int
    db: int
    redis: int
    busy: int
    total: int
    wrk_s: float


class CpuMeter:
    """CPU used by the gunicorn workers, MariaDB and Redis between two samples.

    A worker that exits (max_requests) is counted through the master's cutime.
    """

    def __init__(self, master_pid: int, front_pid: int | None = None):
        self.master_pid = master_pid
        self.front_pid = front_pid
        self.db_pids = pids_by_comm(("mariadbd", "mysqld"))
        self.redis_pids = pids_by_comm(("redis-server",))

    def sample(self) -> CpuSample:
        gunicorn = proc_cpu_ticks(self.master_pid, children=True) + sum(proc_cpu_ticks(p) for p in children_of(self.master_pid))
        front = 0
        if self.front_pid:
            front = proc_cpu_ticks(self.front_pid, children=True) + sum(proc_cpu_ticks(p) for p in children_of(self.front_pid))
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy, total = total_cpu_ticks()
        return CpuSample(
            at=time.monotonic(),
            gunicorn=gunicorn,
            front=front,
            db=sum(proc_cpu_ticks(p) for p in self.db_pids),
            redis=sum(proc_cpu_ticks(p) for p in self.redis_pids),
            busy=busy,
            total=total,
            wrk_s=usage.ru_utime + usage.ru_stime,
        )

    @staticmethod
    def shares(a: CpuSample, b: CpuSample, *, loaded_s: float | None = None) -> dict:
        """Percent of ONE core each used (so 200% = the whole 2-core box).

        ``loaded_s``: how long the load ran inside the samples' span (wrk
        idles out its grace period after the bidders stop): the shares are of
        that time, not diluted by the idle tail."""
        wall = max(b.at - a.at, 1e-9)
        over = min(loaded_s, wall) if loaded_s else wall
        ncpu = os.cpu_count() or 1
        pct = lambda ticks: 100.0 * ticks / CLK_TCK / over  # noqa: E731
        return {
            "gunicorn": pct(b.gunicorn - a.gunicorn),
            "nginx": pct(b.front - a.front),
            "mariadb": pct(b.db - a.db),
            "redis": pct(b.redis - a.redis),
            "wrk": 100.0 * (b.wrk_s - a.wrk_s) / over,
            "box_busy": 100.0 * ncpu * (b.busy - a.busy) / max(b.total - a.total, 1) * wall / over,
        }

    @staticmethod
    def other(shares: dict) -> float:
        """CPU used by everything else on the box (other people's tests...), % of one core."""
        return max(0.0, shares["box_busy"] - shares["gunicorn"] - shares.get("nginx", 0.0) - shares["mariadb"] - shares["redis"]
                   - shares["wrk"])


def wait_quiet(args) -> None:
    """Other people's work on this box skews every number: wait for 6 quiet seconds, or say so."""
    deadline = time.monotonic() + args.wait_quiet
    quiet = 0
    while True:
        busy0, total0 = total_cpu_ticks()
        time.sleep(2)
        busy1, total1 = total_cpu_ticks()
        other = 100.0 * (os.cpu_count() or 1) * (busy1 - busy0) / max(total1 - total0, 1)
        quiet = quiet + 1 if other <= args.max_other_cpu else 0
        if quiet >= 3:
            return
        if time.monotonic() >= deadline:
            log(f"WARNING: other processes use {other:.0f}% of a core; the numbers will be low and noisy")
            return
        if not quiet:
            log(f"waiting for a quiet box: other processes use {other:.0f}% of a core")
