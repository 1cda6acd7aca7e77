"""CLI hook picked up by ``clickstream.cli``: ``clickstream import-log FILE... --site ID``."""

from __future__ import annotations

from importer.run import add_parser, main

__all__ = ["add_parser", "main"]
