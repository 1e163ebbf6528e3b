"""wfe.valkey: Valkey/Redis lock, queue and lifecycle pub/sub for wfe — not implemented yet.

This distribution installs and imports, but provides no providers in this release;
URLs like ``valkey://host:6379/0`` raise a ProviderNotFoundError that says so.
"""

__all__: list[str] = []
