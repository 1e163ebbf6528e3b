"""wfe.opensearch: a search index for wfe workflows on OpenSearch.

Registered under the schemes ``opensearch`` and ``opensearch+https`` in the
``wfe.search`` entry-point group::

    WorkflowHostBuilder().persistence("sqlite:///wfe.db").search("opensearch://localhost:9200")

The client library (opensearch-py) is imported only when an index is opened.
"""

from ._config import DEFAULT_INDEX
from ._index import OpenSearchIndex

__all__ = ["DEFAULT_INDEX", "OpenSearchIndex"]
