"""Prints a resource run's checks as `ok - …` / `not ok - …` lines, which
scripts/resources.sh counts."""

from __future__ import annotations


def report(checks: list[tuple[str, bool, str]]) -> int:
    """Prints each (name, passed, why) check; 1 if any failed, else 0."""
    failed = 0
    for name, passed, why in checks:
        if passed:
            print(f"ok - resources: {name}")
        else:
            failed += 1
            print(f"not ok - resources: {name}: {why}")
    return 1 if failed else 0
