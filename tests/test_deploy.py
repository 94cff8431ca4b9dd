"""deploy/backup.sh as the runbook uses it (deploy/README.md, Backups and restore):
a dump of the live database and a tar of local media, restored into an empty
database with the runbook's commands, hold what the site held. MariaDB only."""

import gzip
import os
import subprocess
import tarfile
import uuid

import pytest
from django.conf import settings
from django.db import connection

from auction.models import Special, User
from tests.factories import LotFactory, UserFactory, png_file
from tests.stack import BASE_DIR, process_database_url

pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.mysql",
        reason="the backup dumps MySQL/MariaDB: services configuration only",
    ),
    pytest.mark.django_db(transaction=True),
]


def client(*args: str, stdin: bytes | None = None) -> str:
    source = connection.settings_dict
    command = ["mariadb", "--no-defaults", f"-h{source['HOST'] or '127.0.0.1'}", f"-P{source['PORT'] or 3306}",
               f"-u{source['USER'] or 'root'}", *([f"-p{source['PASSWORD']}"] if source.get("PASSWORD") else []), *args]
    return subprocess.run(command, input=stdin, check=True, capture_output=True, timeout=120).stdout.decode()


def test_the_nightly_backup_restores_the_database_and_the_media(tmp_path):
    # given a site with rows and an uploaded image on local disk
    for _ in range(3):
        UserFactory()
    LotFactory()
    media = tmp_path / "var" / "media" / "original_images"
    media.mkdir(parents=True)
    (media / "vase.png").write_bytes(png_file().read())
    env_file = tmp_path / "env"
    env_file.write_text(f"DATABASE_URL={process_database_url()}\nAUCTION_VAR_DIR={tmp_path / 'var'}\n")
    # when the backup runs
    backups = tmp_path / "backups"
    done = subprocess.run(["bash", str(BASE_DIR / "deploy" / "backup.sh"), str(backups)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "AUCTION_ENV_FILE": str(env_file)})
    assert done.returncode == 0, done.stderr
    dump, = backups.glob("auction-*.sql.gz")
    archive, = backups.glob("media-*.tar.gz")
    # then the runbook's restore brings the rows back into an empty database
    restored = f"restore_{uuid.uuid4().hex[:8]}"
    client("-e", f"CREATE DATABASE {restored} CHARACTER SET utf8mb4")
    try:
        client(restored, stdin=gzip.decompress(dump.read_bytes()))
        counts = client("-N", "-B", restored, "-e", "SELECT COUNT(*) FROM auction_user; SELECT COUNT(*) FROM auction_special")
        assert [int(line) for line in counts.split()] == [User.objects.count(), Special.objects.count()]
    finally:
        client("-e", f"DROP DATABASE {restored}")
    # and the media archive holds the image
    with tarfile.open(archive) as tar:
        assert "media/original_images/vase.png" in tar.getnames()
