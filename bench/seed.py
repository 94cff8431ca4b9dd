"""Seed the benchmark database: one published special in bidding and N hot lots.

Run by bench/bids.py with the benchmark's environment (DATABASE_URL etc.):

    python bench/seed.py --lots 3 --start-price 100000 --deposit 50000 --increment 1000

Prints one JSON line: {"special_id": ..., "lot_ids": [...]}. Rows are made
directly with the models (no factories, no Wagtail pages): the special is
published, started an hour ago and ends hours ahead, with anti-sniping off
(extension_seconds=0) so a lot's end never moves during the run.
"""

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lots", type=int, default=1)
    parser.add_argument("--start-price", type=int, default=100_000)
    parser.add_argument("--deposit", type=int, default=50_000)
    parser.add_argument("--increment", type=int, default=1_000, help="fen; 0: the default ladder")
    parser.add_argument("--hours", type=int, default=6)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from auction.models import Lot, Special

    now = timezone.now()
    with transaction.atomic():
        special = Special.objects.create(
            title="bench special",
            description="<p>benchmark</p>",
            preview_at=now - timedelta(hours=2),
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=args.hours),
            deposit=0,
            extension_seconds=0,
            stagger_seconds=0,
            is_published=True,
        )
        lot_ids = []
        for position in range(args.lots):
            lot = Lot.objects.create(
                special=special,
                title=f"bench lot {position}",
                description="<p>hot lot</p>",
                position=position,
                start_price=args.start_price,
                deposit=args.deposit,
                increment=args.increment,
                ends_at=special.lot_ends_at(position),
                is_published=True,
            )
            lot_ids.append(lot.pk)
    print(json.dumps({"special_id": special.pk, "lot_ids": lot_ids}))


if __name__ == "__main__":
    main()
