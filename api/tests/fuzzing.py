"""How long the fuzzing and property tests run: bounded in CI, longer on request.

``KIZUNA_FUZZ_EXAMPLES`` is the number of schemathesis examples per operation and caller (25
by default, as in CI); the hypothesis property and stateful tests scale with it, from their
own CI defaults (``KIZUNA_FUZZ_EXAMPLES=2000`` runs each of them 80 times longer).
"""

from __future__ import annotations

import os

CI_EXAMPLES = 25
EXAMPLES = max(1, int(os.environ.get("KIZUNA_FUZZ_EXAMPLES", str(CI_EXAMPLES))))


def scaled(ci_default: int) -> int:
    """``ci_default`` examples in CI, proportionally more (or fewer) when asked for."""
    return max(1, ci_default * EXAMPLES // CI_EXAMPLES)
