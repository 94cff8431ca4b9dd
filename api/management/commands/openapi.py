import json
import urllib.request

from django.core.management.base import BaseCommand

from api.openapi_document import SNAPSHOT_PATH, openapi_document, openapi_text


class Command(BaseCommand):
    help = (
        "Write the OpenAPI document that /api/v1/openapi.json serves (sandbox on) to "
        f"{SNAPSHOT_PATH.relative_to(SNAPSHOT_PATH.parents[2])}, or to --output ('-': stdout)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", default=str(SNAPSHOT_PATH))
        parser.add_argument("--url", help="take the document a running server serves, e.g. http://127.0.0.1:8000/api/v1/openapi.json")
        parser.add_argument(
            "--without-sandbox", action="store_true", help="the document as production serves it (no sandbox paths)"
        )

    def handle(self, *args, output: str, url: str | None, without_sandbox: bool, **options) -> None:
        if url:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url, timeout=30) as response:
                document = json.load(response)
        else:
            document = openapi_document(sandbox=not without_sandbox)
        text = openapi_text(document)
        if output == "-":
            self.stdout.write(text, ending="")
            return
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
        self.stderr.write(f"openapi: wrote {output}")
