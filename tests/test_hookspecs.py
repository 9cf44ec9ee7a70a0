"""Meta-tests: every hook in ``bilten_core/hookspecs.py`` is explained, documented and tested.

Adding a hookspec without a docstring, without its entry in ``docs/plugins.md`` or without a test
makes this module fail; so does documenting a hook that no longer exists.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bilten_core import hookspecs

TESTS = Path(__file__).parent
DOC = TESTS.parent / "docs" / "plugins.md"
SPEC_MARK = "bilten_spec"


def _hookspecs() -> dict[str, Callable[..., Any]]:
    return {name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, SPEC_MARK)}


HOOKS = _hookspecs()


def is_firstresult(name: str) -> bool:
    return bool(getattr(HOOKS[name], SPEC_MARK).get("firstresult"))


def signature_of(name: str) -> str:
    """The hook's signature as written in hookspecs.py (annotations are strings there)."""
    signature = inspect.signature(HOOKS[name])
    params = ", ".join(f"{param.name}: {param.annotation}" for param in signature.parameters.values())
    return f"{name}({params}) -> {signature.return_annotation}"


def documented_hooks() -> dict[str, dict[str, str]]:
    """``### name`` sections of the doc's hook reference: their signature block and firstresult line."""
    text = DOC.read_text(encoding="utf-8")
    reference = text.split("\n## Hook reference", 1)[1]
    sections = re.split(r"^### ", reference, flags=re.MULTILINE)[1:]
    documented: dict[str, dict[str, str]] = {}
    for section in sections:
        heading, body = section.split("\n", 1)
        block = re.search(r"```python\n(.*?)\n```", body, flags=re.DOTALL)
        firstresult = re.search(r"^\*\*firstresult:\*\* (yes|no)\b", body, flags=re.MULTILINE)
        documented[heading.strip().strip("`")] = {
            "signature": block.group(1).strip() if block else "",
            "firstresult": firstresult.group(1) if firstresult else "",
        }
    return documented


def _implemented_hook(node: ast.FunctionDef) -> str | None:
    """The hook a function implements: its name, or the ``specname`` of its ``@hookimpl(...)``."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name != "hookimpl":
            continue
        for keyword in getattr(decorator, "keywords", []):
            if keyword.arg == "specname" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
        return node.name
    return None


def hook_tests_and_implementations() -> tuple[set[str], set[str]]:
    """``test_hook_*`` functions in tests/, and the hooks implemented under tests/ (the hello plugin too)."""
    tests: set[str] = set()
    implementations: set[str] = set()
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            if path.name.startswith("test_") and node.name.startswith("test_hook_"):
                tests.add(node.name)
            hook = _implemented_hook(node)
            if hook:
                implementations.add(hook)
    return tests, implementations


def test_there_are_hooks_to_check():
    assert len(HOOKS) >= 15
    assert "tenant_home_page" in HOOKS and is_firstresult("tenant_home_page")


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_says_when_it_runs_and_what_it_returns(name):
    doc = inspect.getdoc(HOOKS[name]) or ""
    assert re.search(r"\bRuns\b", doc), f"{name}: the docstring must say when it runs ('Runs ...')"
    assert re.search(r"\b[Rr]eturns?\b", doc), f"{name}: the docstring must say what it returns"
    if is_firstresult(name):
        assert "first" in doc, f"{name} is firstresult: the docstring must say the first answer wins"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_is_documented_with_its_exact_signature(name):
    documented = documented_hooks()
    assert name in documented, f"docs/plugins.md has no '### {name}' section in its hook reference"
    assert documented[name]["signature"] == signature_of(name)
    assert documented[name]["firstresult"] == ("yes" if is_firstresult(name) else "no")


def test_the_doc_describes_no_hook_that_does_not_exist():
    assert sorted(set(documented_hooks()) - set(HOOKS)) == []


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_is_exercised_by_a_test(name):
    tests, implementations = hook_tests_and_implementations()
    pattern = re.compile(rf"^test_hook_{name}(_|$)")
    assert [t for t in tests if pattern.match(t)], f"no test named test_hook_{name}_... in tests/"
    assert name in implementations, f"no @hookimpl of {name} under tests/ for its test to exercise"
