"""Bar charts drawn on the server as inline SVG: no JavaScript, no CDN, nothing to fetch.

Each bar carries its value (``data-value``) and a ``<title>`` tooltip, and
links to the list behind it when given a URL.
"""

from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar (may be empty to thin the axis out)
    value: int
    tooltip: str
    url: str = ""


def bar_chart(bars: list[Bar], *, title: str, name: str, width: int = 720, height: int = 200) -> SafeString:
    top, bottom, left = 20, 28, 8
    plot_height = height - top - bottom
    peak = max((bar.value for bar in bars), default=0) or 1
    slot = (width - 2 * left) / max(len(bars), 1)
    bar_width = max(slot * 0.7, 1)
    shapes = []
    for index, bar in enumerate(bars):
        bar_height = round(plot_height * bar.value / peak, 1)
        x = round(left + index * slot + (slot - bar_width) / 2, 1)
        y = round(top + plot_height - bar_height, 1)
        rect = format_html(
            '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}" data-value="{}"><title>{}</title></rect>',
            x, y, round(bar_width, 1), bar_height, bar.value, bar.tooltip,
        )
        if bar.url:
            rect = format_html('<a href="{}">{}</a>', bar.url, rect)
        shapes.append(rect)
        if bar.label:
            shapes.append(format_html(
                '<text x="{}" y="{}" text-anchor="middle" class="chart-label">{}</text>', round(x + bar_width / 2, 1), height - 8, bar.label
            ))
    grid = format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="chart-axis"/>'
        '<text x="{}" y="{}" class="chart-label">{}</text>',
        left, top + plot_height, width - left, top + plot_height, left, top - 6, gettext("max %(peak)s") % {"peak": f"{peak:,}"},
    )
    body = mark_safe(grid + "".join(shapes))
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="ops-chart" data-chart="{}" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">'
        "<style>.chart-bar{{fill:#007d7e}}a:hover .chart-bar{{fill:#00676a}}.chart-label{{font-size:11px;fill:currentColor}}"
        ".chart-axis{{stroke:currentColor;stroke-width:1}}</style>{}</svg>",
        name, width, height, escape(title), body,
    )

