"""Clickstream: self-hosted clickstream and web-bug tracking."""

__version__ = "0.1.0"
