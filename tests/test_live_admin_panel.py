"""The lot editor's Market tab carries what its live script needs (cms/static/cms/live_market.js)."""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from auction.models import Lot
from tests.pages import lot_page, special_page

pytestmark = pytest.mark.django_db


def test_the_lot_editor_loads_the_live_script_with_the_lot_to_watch(client, django_user_model):
    # given an editor on a published lot's page
    page = lot_page(special_page())
    lot = Lot.objects.get(page_id=page.pk)
    client.force_login(django_user_model.objects.create_superuser("live-ops", "ops@example.com", "pw-ops-12345"))
    # when the editor opens it
    html = client.get(reverse("wagtailadmin_pages:edit", args=(page.pk,))).content.decode()
    # then the Market tab names the lot and the socket, and the script is this site's static file
    assert f'data-live-lot="{lot.pk}"' in html and 'data-live-path="/ws/v1/live"' in html
    assert 'src="/static/cms/live_market.js"' in html and finders.find("cms/live_market.js")
    assert 'data-live-field="watchers"' in html and 'id="live-market-status-labels"' in html
