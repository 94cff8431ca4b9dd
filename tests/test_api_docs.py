"""The API docs render without internet: every asset of /api/v1/docs is ours, served locally."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_docs_page_uses_only_local_static_assets():
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [source for source in sources if source.endswith((".js", ".css"))]
    assert assets, html
    assert not [source for source in sources if source.startswith(("http:", "https:", "//"))]
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "/api/v1/openapi.json" in html
