"""Alembic migrations of the operational database (run by :func:`migrate`)."""
