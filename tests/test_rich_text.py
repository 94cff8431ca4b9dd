"""Rich text reaches the API as front-end HTML, without the editor's internal attributes."""

import pytest

from auction.models import Lot
from tests.pages import lot_page, special_page

pytestmark = pytest.mark.django_db


def test_a_lots_description_reaches_the_api_without_data_block_key(api):
    page = lot_page(special_page(), description='<p data-block-key="x1y2">宋代<b>青瓷</b></p><h2 data-block-key="k9">来源</h2>')
    lot = Lot.objects.get(page_id=page.pk)
    assert lot.description == "<p>宋代<b>青瓷</b></p><h2>来源</h2>"
    body = api.get(f"/lots/{lot.pk}").json()
    assert "data-block-key" not in body["description"] and "<b>青瓷</b>" in body["description"]
