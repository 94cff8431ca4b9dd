"""Rich text as the API serves it: front-end HTML, without what only the editor needs."""

import re

from wagtail.rich_text import expand_db_html

# Draftail keeps a block key on every block for its own diffing; the phone has no use for it.
EDITOR_ATTRIBUTES = re.compile(r'\s+data-block-key="[^"]*"')


def api_html(value) -> str:
    """Internal links and embedded images resolved (``expand_db_html``), editor attributes dropped."""
    return EDITOR_ATTRIBUTES.sub("", expand_db_html(str(value or "")))
