"""Persistence: ClickHouse SQL for calls and analytics, SQLAlchemy for metadata, files for recordings.

Callers depend on the ``CallStore`` protocol in ``store.base``; only the composition roots (the server
and the CLI) open a concrete store.
"""
