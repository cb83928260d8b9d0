"""axe-core (npm, from node_modules) run inside a page: every page's browser test calls
``assert_accessible`` and fails on a serious or critical violation.

The script goes in through DevTools (``page.evaluate``), not a ``<script>`` tag, so the
pages' Content Security Policy stays as strict as in production.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
#: The WCAG 2.1 A and AA rules (contrast included) plus axe's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING = {"serious", "critical"}


@cache
def _source() -> str:
    if not AXE_JS.exists():
        raise AssertionError(f"{AXE_JS} is missing: `make setup` installs the npm packages")
    return AXE_JS.read_text()


def axe_violations(page: Page, *, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """Every violation axe finds on the page as it is now (all impacts)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_source())
    context = {"exclude": [[selector] for selector in exclude or []]}
    options = {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}
    result: dict[str, Any] = page.evaluate(
        "([context, options]) =>"
        " window.axe.run(context.exclude.length ? context : document, options)",
        [context, options],
    )
    return list(result["violations"])


def summary(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:5]]
        where = json.dumps(targets)
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']}) at {where}")
    return "\n".join(lines)


def assert_accessible(page: Page, *, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """Fail on serious or critical violations; return the minor and moderate ones so a test
    (or a report) can list them."""
    violations = axe_violations(page, exclude=exclude)
    bad = [v for v in violations if v.get("impact") in FAILING]
    assert not bad, "axe-core found serious or critical accessibility violations:\n" + summary(bad)
    return [v for v in violations if v.get("impact") not in FAILING]
