"""`numstab lab`: registered on the shared app (filled in by its issue)."""

from __future__ import annotations

from numstab.cli._app import app  # noqa: F401
