"""wfe.postgres: PostgreSQL persistence, queue, lock and search for wfe — not implemented yet.

This distribution installs and imports, but provides no providers in this release;
URLs like ``postgresql://user:pw@host/db`` raise a ProviderNotFoundError that says so.
"""

__all__: list[str] = []
