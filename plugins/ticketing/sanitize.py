"""Organisers write descriptions in a little HTML; buyers' browsers must never run any of it.

Descriptions are cleaned once, when saved, and stored clean, so every page and feed can show them
as markup without cleaning them again.
"""

from __future__ import annotations

import html as html_lib
import re

import nh3

# Formatting an organiser needs for a description; no images (tracking pixels), forms or frames.
ALLOWED_TAGS = frozenset({
    "p", "br", "strong", "b", "em", "i", "u", "s", "a", "ul", "ol", "li",
    "h2", "h3", "h4", "blockquote", "code", "pre", "hr",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
# Links only to the web or an address; javascript:, data: and the like are dropped with the href.
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})


def clean_description(html: str) -> str:
    """``html`` with only safe formatting left: scripts, styles, event handlers and unsafe links go.

    Text without any markup is taken as plain text: blank lines separate its paragraphs.
    """
    if "<" not in html:
        paragraphs = [part.strip() for part in re.split(r"\n\s*\n", html.replace("\r\n", "\n")) if part.strip()]
        return "".join(
            "<p>" + html_lib.escape(part, quote=False).replace("\n", "<br>") + "</p>" for part in paragraphs
        )
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        clean_content_tags={"script", "style"},
        strip_comments=True,
    ).strip()
