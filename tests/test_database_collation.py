"""A MySQL/MariaDB database made the usual way migrates (issue 12, item 9).

``CREATE DATABASE auction CHARACTER SET utf8mb4`` takes the server's default
collation (utf8mb4_general_ci on MariaDB 10.11); the connection takes the
database's own (auction/db.py), so Wagtail's migrations compare like with
like. A database that is not utf8mb4 is refused before migrate writes a table.
Each database is made here, migrated by ``manage.py migrate`` in its own
process (the three at once), and dropped.
"""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.skipif(connection.vendor != "mysql", reason="collations are MySQL/MariaDB's; SQLite has none to mix"),
]

ROOT = Path(__file__).resolve().parent.parent
HOW = {
    "plain": "CHARACTER SET utf8mb4",
    "unicode": "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    "latin1": "CHARACTER SET latin1",
}


def _server():
    import MySQLdb

    params = connection.settings_dict
    return MySQLdb.connect(
        host=params["HOST"] or "127.0.0.1", port=int(params["PORT"] or 3306), user=params["USER"], password=params["PASSWORD"] or ""
    )


def _url(name: str) -> str:
    params = connection.settings_dict
    credentials = quote(params["USER"]) + (":" + quote(params["PASSWORD"]) if params["PASSWORD"] else "")
    return f"mysql://{credentials}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 3306}/{name}"


@pytest.fixture
def databases():
    """One database per way of making it, named after the test database, dropped afterwards."""
    base = "test_" + connection.settings_dict["NAME"].removeprefix("test_")
    names = {kind: f"{base}_collation_{kind}"[:64] for kind in HOW}
    server = _server()
    try:
        with server.cursor() as cursor:
            for kind, name in names.items():
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cursor.execute(f"CREATE DATABASE `{name}` {HOW[kind]}")
        yield names
    finally:
        with server.cursor() as cursor:
            for name in names.values():
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        server.close()


def _table_collations(name: str) -> set[str]:
    server = _server()
    try:
        with server.cursor() as cursor:
            cursor.execute("SELECT DISTINCT table_collation FROM information_schema.tables WHERE table_schema = %s", [name])
            return {row[0] for row in cursor.fetchall()}
    finally:
        server.close()


def test_migrate_works_on_a_database_made_either_way_and_refuses_one_not_utf8mb4(databases, tmp_path):
    # given three databases, made as an operator might; when each is migrated at once
    migrations = {
        kind: subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": _url(name), "AUCTION_VAR_DIR": str(tmp_path / kind)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for kind, name in databases.items()
    }
    outputs = {}
    for kind, process in migrations.items():
        try:
            outputs[kind] = process.communicate(timeout=400)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            outputs[kind] = process.communicate()[0]
    codes = {kind: process.returncode for kind, process in migrations.items()}

    # then utf8mb4 made either way migrates, every table in the database's own collation
    assert codes["plain"] == 0, outputs["plain"][-3000:]
    assert "Applying wagtailcore.0075" in outputs["plain"]
    assert _table_collations(databases["plain"]) == {"utf8mb4_general_ci"}
    assert codes["unicode"] == 0, outputs["unicode"][-3000:]
    assert _table_collations(databases["unicode"]) == {"utf8mb4_unicode_ci"}
    # and latin1 is refused before any table exists, naming the statement that mends it
    assert codes["latin1"] != 0
    assert "auction.E001" in outputs["latin1"]
    assert f"ALTER DATABASE `{databases['latin1']}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" in outputs["latin1"]
    assert _table_collations(databases["latin1"]) == set()
