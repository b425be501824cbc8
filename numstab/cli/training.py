"""`numstab lab training`: registered on the lab sub-app (filled in by its issue)."""

from __future__ import annotations

from numstab.cli._app import lab_app  # noqa: F401
