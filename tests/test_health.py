"""``/healthz`` and ``/readyz`` (project/health.py) and the job cluster's heartbeat
(jobs/health.py): in-process through Django's test client, then through real
HTTP against a web process whose Redis and MariaDB (our own, tests/servers.py)
are stopped under it.
"""

import importlib.util
import os
import signal
import sys
import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from jobs.health import broker, cluster_heartbeat
from jobs.schedules import sweep_every_minute
from project.health import run_checks
from tests.servers import PORT_BASE, MariaDBServer, RedisServer, port_is_open, wait_until
from tests.stack import answers, wait_for_processes
from tests.test_e2e_cluster import ENV_DROPPED, _spawn, _test_database_url

CHECKS = {"database", "cache", "broker", "jobs"}


def sweep_due(minutes_ago: float) -> None:
    schedule = sweep_every_minute()
    Schedule.objects.filter(pk=schedule.pk).update(next_run=timezone.now() - timedelta(minutes=minutes_ago))


@pytest.fixture
def cluster_stats():
    """Saves a cluster's status as Django-Q2's sentinel does (Stat.save), in this
    broker; gone after the test (the Redis broker's db is not the cache's, which
    the suite clears)."""
    keys = []

    def save(*, status=Conf.IDLE, seconds: int = 30) -> None:
        cluster_id = uuid.uuid4()
        stat = Status(pid=os.getpid(), cluster_id=cluster_id)
        stat.status = status
        key = Stat.get_key(cluster_id)
        broker().set_stat(key, SignedPackage.dumps(stat, True), seconds)
        keys.append(key)

    yield save
    found = broker()
    for key in keys:
        if settings.REDIS_URL:
            found.connection.delete(key)
        else:
            found.cache.delete(key)


# --- in-process ----------------------------------------------------------------------------------------


def test_healthz_answers_without_touching_the_database(client):
    # no database fixture: any query here would fail the test
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db(transaction=True)
def test_readyz_is_200_when_every_check_passes(client):
    # given: the minute sweep on time (a cluster running it)
    sweep_due(minutes_ago=-0.5)
    # when
    response = client.get("/readyz")
    # then
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and set(body["checks"]) == CHECKS
    assert all(check["status"] == "ok" and check["elapsed_ms"] >= 0 for check in body["checks"].values()), body
    assert body["checks"]["broker"]["broker"] == ("redis" if settings.REDIS_URL else "database")
    assert body["checks"]["database"]["vendor"] == connection.vendor


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_no_cluster_beats_its_heartbeat(client):
    # given: no cluster's stat in the broker, and the sweep five minutes late
    sweep_due(minutes_ago=5)
    # when
    response = client.get("/readyz")
    # then: the jobs check fails, and says what it saw; the others pass
    body = response.json()
    assert response.status_code == 503 and body["status"] == "fail"
    jobs = body["checks"]["jobs"]
    assert jobs["status"] == "fail" and "heartbeat" in jobs["error"] and jobs["clusters"] == 0
    assert all(body["checks"][name]["status"] == "ok" for name in CHECKS - {"jobs"}), body


@pytest.mark.django_db(transaction=True)
def test_a_clusters_own_heartbeat_in_the_broker_is_enough(client, cluster_stats):
    # given: the sweep late, but a cluster's status fresh in the broker (Django-Q2's heartbeat)
    sweep_due(minutes_ago=5)
    cluster_stats()
    # when / then
    beat = cluster_heartbeat()
    assert beat.is_beating and beat.clusters == 1 and beat.newest_stat_at > timezone.now() - timedelta(seconds=10)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["jobs"]["clusters"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_stopping_cluster_is_no_heartbeat(cluster_stats):
    sweep_due(minutes_ago=5)
    cluster_stats(status=Conf.STOPPING)
    beat = cluster_heartbeat()
    assert not beat.is_beating and beat.clusters == 0


@pytest.mark.django_db
def test_the_back_office_warns_on_the_same_rule(client, django_user_model):
    from cms.dashboard import job_warnings

    sweep_due(minutes_ago=5)
    assert any("qcluster" in str(warning) for warning in job_warnings())
    sweep_due(minutes_ago=-0.5)
    assert not any("qcluster" in str(warning) for warning in job_warnings())


def test_a_hung_check_fails_with_timeout_and_is_not_started_again():
    # given: a check that hangs (a SIGSTOPped server) until released
    release = threading.Event()
    calls = []

    def hangs() -> dict:
        calls.append(1)
        release.wait(30)
        return {}

    try:
        # when
        started = time.monotonic()
        first = run_checks({"stuck": hangs, "fine": lambda: {"x": 1}}, 0.3)
        elapsed = time.monotonic() - started
        second = run_checks({"stuck": hangs}, 0.3)
    finally:
        release.set()
    # then: the probe answered in its time, and the hung check holds one thread, not one per probe
    assert first["stuck"]["status"] == "fail" and first["stuck"]["error"] == "timeout"
    assert first["fine"] == {"status": "ok", "x": 1, "elapsed_ms": first["fine"]["elapsed_ms"]}
    assert elapsed < 2
    assert second["stuck"]["status"] == "fail" and "previous check" in second["stuck"]["detail"]
    assert calls == [1]


@pytest.mark.django_db(transaction=True)
def test_a_running_job_cluster_is_seen_by_its_heartbeat_and_missed_when_it_stops(tmp_path):
    # given: the sweep late, and the real cluster (manage.py runjobs) on the test database and broker
    sweep_due(minutes_ago=5)
    assert cluster_heartbeat().clusters == 0
    env = {key: value for key, value in os.environ.items() if key not in ENV_DROPPED}
    # The same cluster name (the broker's stat keys) and cache as this process's.
    env.update({"DATABASE_URL": _test_database_url(), "DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_DEBUG": "1",
                "AUCTION_VAR_DIR": str(tmp_path / "var"), "Q_CLUSTER_NAME": settings.Q_CLUSTER["name"],
                "PYTHONUNBUFFERED": "1", "Q_WORKERS": "1"})
    if settings.REDIS_URL:
        env.update(REDIS_URL=settings.REDIS_URL, REDIS_CACHE_URL=settings.REDIS_CACHE_URL,
                   CACHE_KEY_PREFIX=settings.CACHES["default"].get("KEY_PREFIX", ""))
    proc = _spawn("runjobs", [sys.executable, "manage.py", "runjobs", "--tick", "1"], env, tmp_path, signal.SIGTERM)
    try:
        # when / then: its heartbeat is in the broker within a few seconds of its start
        beat = wait_until("the cluster's heartbeat", lambda: (b := cluster_heartbeat()).clusters and b, timeout=60, interval=0.5)
        assert beat.is_beating and beat.newest_stat_at > timezone.now() - timedelta(seconds=10)
    finally:
        proc.stop()
    # and once it stopped, its stat expires (3 s) and the late sweep alone cannot vouch for it
    Schedule.objects.filter(name__startswith="sweep").update(next_run=timezone.now() - timedelta(minutes=5))
    wait_until("the heartbeat missed", lambda: not cluster_heartbeat().is_beating, timeout=15, interval=0.5)


# --- a real web process, its Redis and MariaDB stopped under it -----------------------------------------

_PORTS = iter(range(PORT_BASE + 100, PORT_BASE + 140))


def _web(tmp_path, **env_extra: str):
    """uvicorn serving the site (project.asgi, as `make run`), on the test database unless told otherwise."""
    port = next(_PORTS)
    assert not port_is_open(port), f"port {port} is taken"
    # Its cache on its own Redis too (REDIS_CACHE_URL falls back to REDIS_URL), never the suite's.
    env = {key: value for key, value in os.environ.items() if key not in (*ENV_DROPPED, "REDIS_CACHE_URL")}
    env.update({
        "DATABASE_URL": _test_database_url(), "DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_DEBUG": "1",
        "AUCTION_VAR_DIR": str(tmp_path / "var"), "AUCTION_READY_TIMEOUT_SECONDS": "1",
        "Q_CLUSTER_NAME": f"readyz-{uuid.uuid4().hex[:8]}", "CACHE_KEY_PREFIX": f"readyz-{uuid.uuid4().hex[:8]}",
        "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", **env_extra,
    })
    args = [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
    proc = _spawn(f"web-{port}", args, env, tmp_path, signal.SIGINT)
    url = f"http://127.0.0.1:{port}"

    wait_for_processes("the web process answering /healthz", lambda: answers(f"{url}/healthz"), [proc])
    return proc, url


def _readyz(url: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = httpx.get(f"{url}/readyz", trust_env=False, timeout=15)
    return response.status_code, response.json(), time.monotonic() - started


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis-dir")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_readyz_fails_fast_when_redis_dies_and_recovers_with_it(tmp_path, redis_server):
    # given: a web process on its own Redis (cache and broker), the sweep on time
    sweep_due(minutes_ago=-0.5)
    proc, url = _web(tmp_path, REDIS_URL=redis_server.url)
    try:
        status, body, _ = _readyz(url)
        assert status == 200, body
        # when: Redis dies
        redis_server.stop()
        status, body, elapsed = _readyz(url)
        # then: not ready, in about the checks' timeout; the process itself is up
        assert status == 503 and body["status"] == "fail", body
        assert body["checks"]["cache"]["status"] == "fail" and body["checks"]["broker"]["status"] == "fail", body
        assert body["checks"]["database"]["status"] == "ok", body
        assert elapsed < 5
        assert httpx.get(f"{url}/healthz", trust_env=False, timeout=5).status_code == 200
        # and when it is hung rather than dead (accepts, never answers), the probe still answers in time
        redis_server.start()
        wait_until("ready again", lambda: _readyz(url)[0] == 200, timeout=20, interval=0.5)
        redis_server.hang()
        status, body, elapsed = _readyz(url)
        assert status == 503 and body["checks"]["cache"]["status"] == "fail" and elapsed < 5, body
        redis_server.resume()
        wait_until("ready once it answers", lambda: _readyz(url)[0] == 200, timeout=20, interval=0.5)
    finally:
        proc.stop()


@pytest.mark.skipif(importlib.util.find_spec("MySQLdb") is None, reason="needs mysqlclient (services configuration)")
def test_readyz_fails_fast_when_the_database_dies(tmp_path):
    # given: a web process on a MariaDB of its own (an empty database: the checks need no table but the jobs')
    mariadb = MariaDBServer(tmp_path / "mariadb-dir")
    mariadb.directory.mkdir()
    mariadb.install()
    mariadb.start()
    proc = None
    try:
        mariadb.query("mysql", "CREATE DATABASE readyz CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        proc, url = _web(tmp_path, DATABASE_URL=f"mysql://root@127.0.0.1:{mariadb.port}/readyz", DATABASE_CONN_MAX_AGE="0")
        status, body, _ = _readyz(url)
        assert body["checks"]["database"]["status"] == "ok", body
        # when: MariaDB is killed
        mariadb.kill()
        status, body, elapsed = _readyz(url)
        # then
        assert status == 503 and body["checks"]["database"]["status"] == "fail", body
        assert body["checks"]["database"]["error"] == "OperationalError"  # its type only: the answer is public
        assert elapsed < 5
        assert httpx.get(f"{url}/healthz", trust_env=False, timeout=5).status_code == 200
    finally:
        if proc is not None:
            proc.stop()
        mariadb.stop()
