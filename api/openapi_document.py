"""The OpenAPI document as ``/api/v1/openapi.json`` serves it, for the committed
snapshot that the typed client is generated from (``make client``) and that
``tests/test_contract.py`` compares with the code."""

import json
from pathlib import Path

from django.conf import settings
from django.test.utils import override_settings
from ninja.responses import NinjaJSONEncoder

from api.main import api

SNAPSHOT_PATH = Path(settings.BASE_DIR) / "clients" / "miniprogram" / "openapi.json"


def openapi_document(*, sandbox: bool = True) -> dict:
    """The document, as JSON would carry it (integer status keys become strings).

    With the sandbox on by default: it is what the embedded default, the demo and
    the client's tests talk to, and its two extra paths are marked sandbox-only.
    """
    with override_settings(AUCTION_SANDBOX=sandbox):
        schema = api.get_openapi_schema()
    return json.loads(json.dumps(schema, cls=NinjaJSONEncoder))


def openapi_text(document: dict) -> str:
    # Stable text: the snapshot's diff in review shows what changed, nothing else.
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
