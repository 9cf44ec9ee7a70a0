"""The checks every browser test runs on a page: WCAG 2.2 AA with axe-core, and tap-target sizes."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

# axe-core's tags for WCAG 2.0, 2.1 and 2.2, levels A and AA. (WCAG 2.2's new level A criteria
# have no automated rule, so axe-core has a "wcag22aa" tag but no "wcag22a".)
WCAG_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_AA_TAGS}, "resultTypes": ["violations"]}
AXE = Axe()  # reads the axe-core script shipped in the wheel once; no network
MIN_TARGET = 24  # CSS px, WCAG 2.2 success criterion 2.5.8 (target size, minimum)

# Links and controls smaller than MIN_TARGET, except inline links inside a sentence (2.5.8's
# "inline" exception) and elements parked off-screen until focused (the skip link).
SMALL_TARGETS_JS = """(min) => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, [role=button]';
  const small = [];
  for (const el of document.querySelectorAll(selector)) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width === 0 || box.height === 0 || style.visibility === 'hidden') continue;
    if (box.right <= 0 || box.bottom <= 0) continue;
    if (box.width >= min && box.height >= min) continue;
    const ownText = el.textContent.trim();
    const inSentence = style.display === 'inline' && el.parentElement.textContent.trim() !== ownText;
    if (inSentence) continue;
    small.push(`<${el.tagName.toLowerCase()}> "${ownText}": ${box.width.toFixed(1)}x${box.height.toFixed(1)}`);
  }
  return small;
}"""


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"]:
            target = " ".join(str(selector) for selector in node["target"])
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    {target}: {summary}")
    return "\n".join(lines)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 AA violations of the page once it has loaded.

    A form's answer can be in the DOM before its stylesheet has applied; sizes and contrast are
    only right after the page's ``load`` event.
    """
    page.wait_for_load_state("load")
    violations: list[dict[str, Any]] = AXE.run(page, options=AXE_OPTIONS).response["violations"]
    return violations


def assert_accessible(page: Page, what: str) -> None:
    """The page as it is now has no axe-core WCAG 2.2 AA violation and no target under MIN_TARGET."""
    violations = axe_violations(page)
    assert not violations, f"{what}:\n{describe(violations)}"
    small = page.evaluate(SMALL_TARGETS_JS, MIN_TARGET)
    assert not small, f"{what}: targets under {MIN_TARGET}x{MIN_TARGET} px: {small}"
