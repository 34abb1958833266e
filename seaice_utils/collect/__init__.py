"""Stage 01, collection: Earth Engine, STAC or local products -> scenes + catalogue.

:func:`collect` dispatches by ``data.source``; only this stage imports the source modules.
"""

from seaice_utils.collect.run import (CollectionUnavailable, access_rows, collect,
                                      collection_figure, ee_request, query_rows, resolve_source,
                                      stac_request)

__all__ = ["CollectionUnavailable", "access_rows", "collect", "collection_figure", "ee_request",
           "query_rows", "resolve_source", "stac_request"]
