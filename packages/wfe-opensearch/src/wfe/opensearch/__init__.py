"""wfe.opensearch: an OpenSearch search index for wfe — not implemented yet.

This distribution installs and imports, but provides no providers in this release;
URLs like ``opensearch://host:9200`` raise a ProviderNotFoundError that says so.
"""

__all__: list[str] = []
