"""What every end-to-end client prints: one TAP line per check,
`ok - LABEL: NAME` or `not ok - LABEL: NAME: REASON`, and the count of
failed checks, from which a client takes its exit code."""

from __future__ import annotations

failures = 0


def check(label: str, name: str, passed: bool, reason: str = "") -> bool:
    global failures
    if passed:
        print(f"ok - {label}: {name}", flush=True)
    else:
        failures += 1
        print(f"not ok - {label}: {name}: {reason}", flush=True)
    return passed
