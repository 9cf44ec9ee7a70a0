"""Descriptions keep an organiser's formatting and lose anything a browser would run."""

from __future__ import annotations

import pytest

from plugins.ticketing.sanitize import clean_description


@pytest.mark.parametrize(("dirty", "clean"), [
    ("<p>Hello <strong>world</strong></p>", "<p>Hello <strong>world</strong></p>"),
    ("<p onclick='x()' style='color:red'>Hi</p>", "<p>Hi</p>"),
    ("<script>alert(1)</script><p>ok</p>", "<p>ok</p>"),
    ("<style>body{display:none}</style>text", "text"),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="data:text/html,<script>alert(1)</script>">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="https://example.org" target="_blank">x</a>',
     '<a href="https://example.org" rel="noopener noreferrer nofollow">x</a>'),
    ('<img src=x onerror="alert(1)">', ""),
    ("<iframe src='https://evil.example'></iframe><form><input></form>", ""),
    ("<svg><script>alert(1)</script></svg>", ""),
    ("<!-- hidden --><em>seen</em>", "<em>seen</em>"),
    ("<ul><li>one</li><li>two</li></ul>", "<ul><li>one</li><li>two</li></ul>"),
    ("Doors at 7 & music at 8.\n\nBring friends.\nAnd snacks.",
     "<p>Doors at 7 &amp; music at 8.</p><p>Bring friends.<br>And snacks.</p>"),
    ("", ""),
])
def test_descriptions_are_cleaned(dirty, clean):
    assert clean_description(dirty) == clean
