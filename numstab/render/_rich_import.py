"""Import rich without moving the user's global RNG.

rich draws a random number when ``rich.style`` is first imported (``count(getrandbits(24))``), which
advances Python's global ``random`` state: a script that seeded ``random`` and then printed a numstab
report would draw different numbers afterwards. The rendering modules that use rich (``terminal``,
``check``, ``theory``; every other one reaches rich through them) import this module first; it imports
``rich.style`` with the state saved and restored.
"""

from __future__ import annotations

import random

_state = random.getstate()
try:
    import rich.style  # noqa: F401
finally:
    random.setstate(_state)
