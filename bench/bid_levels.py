"""One level of the bid benchmark (bench/bids.py): bidders logged in and their lot
deposits paid over HTTP, wrk driving bench/bids.lua at the lot, its output read
into a LevelResult with the database check; and the ceiling, wrk on one plain
endpoint (bench/ceiling.lua)."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from bid_database import db_check, scalar
from machine import CpuMeter, calibrate
from servers import ROOT, Profiler, Server, run_wrk

BENCH = ROOT / "bench"


def login_bidders(base: str, count: int) -> list[str]:
    import httpx

    tokens = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(count):
            r = client.post("/api/v1/auth/sandbox", json={"openid": f"bench-{i:03d}", "nickname": f"bidder{i:03d}"})
            if r.status_code != 200:
                raise RuntimeError(f"sandbox login failed: {r.status_code} {r.text[:300]}")
            tokens.append(r.json()["token"])
    return tokens


def pay_deposits(base: str, tokens: list[str], lot_id: int) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=30) as client:
        for token in tokens:
            auth = {"Authorization": f"Bearer {token}"}
            r = client.post("/api/v1/deposits", json={"lot_id": lot_id}, headers=auth)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"deposit failed: {r.status_code} {r.text[:300]}")
            out_trade_no = r.json()["payment"]["out_trade_no"]
            r = client.post(f"/api/v1/payments/sandbox/{out_trade_no}/succeed", headers=auth)
            if r.status_code != 200:
                raise RuntimeError(f"sandbox payment failed: {r.status_code} {r.text[:300]}")



def percentile(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-p * len(sorted_values) // 100)))  # nearest rank
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LevelResult:
    bidders: int
    connections: int
    lot_id: int
    window_s: float
    sent: int
    received: int
    accepted: int
    too_low: int
    leading: int
    conflict_other: int
    client_other: int
    server_5xx: int
    socket_errors: dict
    statuses: dict
    p50_ms: float
    p99_ms: float
    p99_ok_ms: float
    db_ok: bool
    db_problems: list[str]
    db_facts: dict
    cpu: dict = field(default_factory=dict)
    worker_boots: int = 0
    t_span: tuple = (0.0, 0.0)
    loop_ms: float = 0.0

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.window_s if self.window_s else 0.0

    @property
    def conflicts_per_s(self) -> float:
        return (self.too_low + self.leading + self.conflict_other) / self.window_s if self.window_s else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.received / self.window_s if self.window_s else 0.0


def parse_bids_out(text: str) -> dict:
    out = {"threads": [], "statuses": {}, "lat": [], "lat_ok": [], "summary": None}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "summary":
            v = [int(x) for x in rest.split()]
            out["summary"] = dict(zip(("duration", "requests", "connect", "read", "write", "status", "timeout"), v, strict=False))
        elif kind == "thread":
            out["threads"].append({k: int(v) for k, v in (part.split("=") for part in rest.split())})
        elif kind == "statuses":
            for part in rest.split():
                code, count = part.split(":")
                out["statuses"][int(code)] = out["statuses"].get(int(code), 0) + int(count)
        elif kind == "lat":
            out["lat"].extend(int(x) for x in rest.split())
        elif kind == "lat_ok":
            out["lat_ok"].extend(int(x) for x in rest.split())
    return out


def run_level(args, server: Server, meter: CpuMeter, conn, tmp: Path, tokens: list[str], bidders: int, lot_id: int, *,
              profiler: Profiler) -> LevelResult:
    used = tokens[: max(bidders, 2 if bidders == 1 and args.solo_pair else bidders)]
    pay_deposits(server.base, used, lot_id)
    held = scalar(conn.cursor(), "SELECT COUNT(*) FROM auction_deposit WHERE lot_id = %s AND status = 'held'", (lot_id,))
    if held != len(used):
        raise RuntimeError(f"lot {lot_id}: {held} held deposits, expected {len(used)}")
    if bidders == 1 and args.solo_pair:
        lines = [" ".join(used[:2])]  # one connection taking turns between two bidders
    else:
        lines = used[:bidders]
    tokens_file = tmp / f"tokens-{lot_id}.txt"
    tokens_file.write_text("\n".join(lines) + "\n")
    out_path = tmp / f"bids-{lot_id}.out"
    connections = len(lines)
    url = f"{server.base}/api/v1/lots/{lot_id}/bids"
    cmd = [
        "wrk", f"-t{connections}", f"-c{connections}", f"-d{args.seconds + args.grace}s", "--timeout", "10s",
        "-s", str(BENCH / "bids.lua"), url, "--",
        str(tokens_file), str(args.seconds), str(args.increment), str(args.jitter), str(args.start_price),
        args.strategy, str(int(time.monotonic() * 1e6)), str(args.tick_us),
        str(int(connections * 1e6 / args.rate) if args.rate else 0),
    ]
    loop_ms = calibrate()
    boots0 = server.boots()
    profiler.start(server.proc.pid, f"bids-{server.env['GUNICORN_WORKERS']}x{server.env['GUNICORN_THREADS']}-{bidders}", args.seconds)
    before = meter.sample()
    try:
        run_wrk(cmd, out_path, timeout=args.seconds + args.grace + 30)
    finally:
        after = meter.sample()
        profiler.stop()
    data = parse_bids_out(out_path.read_text())
    threads = data["threads"]
    t_first = min(t["t_first"] for t in threads if t["t_first"])
    t_last = max(t["t_last"] for t in threads)
    total = lambda key: sum(t[key] for t in threads)  # noqa: E731
    lat = sorted(data["lat"])
    lat_ok = sorted(data["lat_ok"])
    accepted = total("accepted")
    ok, problems, facts = db_check(conn, lot_id, accepted)
    if total("sent") != total("received"):
        problems = [*problems, f"{total('sent') - total('received')} requests without an answer"]
    summary = data["summary"] or {}
    return LevelResult(
        bidders=bidders,
        connections=connections,
        lot_id=lot_id,
        window_s=(t_last - t_first) / 1e6,
        sent=total("sent"),
        received=total("received"),
        accepted=accepted,
        too_low=total("too_low"),
        leading=total("leading"),
        conflict_other=total("conflict_other"),
        client_other=total("client_other"),
        server_5xx=total("server_5xx"),
        socket_errors={k: summary.get(k, 0) for k in ("connect", "read", "write", "timeout")},
        statuses=data["statuses"],
        p50_ms=percentile(lat, 50) / 1000,
        p99_ms=percentile(lat, 99) / 1000,
        p99_ok_ms=percentile(lat_ok, 99) / 1000,
        db_ok=ok,
        db_problems=problems,
        db_facts=facts,
        cpu=CpuMeter.shares(before, after, loaded_s=(t_last - t_first) / 1e6),
        worker_boots=server.boots() - boots0,
        loop_ms=loop_ms,
    )


def run_ceiling(args, base: str, path: str, tmp: Path, name: str, *, method: str = "GET", meter: CpuMeter | None = None,
                seconds: int | None = None, profile_pid: int | None = None, profiler: Profiler | None = None) -> dict:
    seconds = seconds or args.seconds
    out_path = tmp / f"{name}.out"
    script = BENCH / "ceiling.lua"
    cmd = ["wrk", "-t2", f"-c{args.ceiling_connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script)]
    if method != "GET":
        # wrk -s takes one script; the method comes from a tiny wrapper.
        wrapper = tmp / f"{name}.lua"
        wrapper.write_text(f'wrk.method = "{method}"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = "{{}}"\ndofile("{script}")\n')
        cmd[-1] = str(wrapper)
    cmd.append(base + path)
    if profile_pid:
        profiler.start(profile_pid, name, seconds)
    before = meter.sample() if meter else None
    try:
        run_wrk(cmd, out_path, timeout=seconds + 30)
    finally:
        after = meter.sample() if meter else None
        if profile_pid:
            profiler.stop()
    fields = out_path.read_text().split()
    names = ("duration", "requests", "ok", "c4xx", "c5xx", "p50", "p99", "connect", "read", "write", "timeout")
    values = dict(zip(names, (int(x) for x in fields[1:]), strict=False))
    values["rps"] = values["requests"] / (values["duration"] / 1e6)
    values["ok_rps"] = values["ok"] / (values["duration"] / 1e6)
    values["path"] = path
    if meter:
        values["cpu"] = CpuMeter.shares(before, after)
    return values
