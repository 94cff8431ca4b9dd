"""A picture whose original file has gone from storage never makes a lot unreadable."""

from tests.factories import ImageFactory, LotFactory


def test_a_lot_whose_cover_file_is_missing_reads_without_the_cover(api):
    # given a published lot whose cover's original was deleted from storage
    cover = ImageFactory()
    lot = LotFactory(cover=cover)
    cover.file.storage.delete(cover.file.name)

    # when a bidder reads it, and the special that lists it
    lot_answer = api.get(f"/lots/{lot.pk}")
    special_answer = api.get(f"/specials/{lot.special_id}")

    # then both answer, with no cover instead of a 500
    assert lot_answer.status_code == 200, lot_answer.content
    assert lot_answer.json()["cover"] is None
    assert special_answer.status_code == 200, special_answer.content
    assert [summary["cover"] for summary in special_answer.json()["lots"]] == [None]
