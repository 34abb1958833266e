"""Stage 01, collection: Earth Engine, STAC or local products -> scenes + catalogue.

:func:`collect` dispatches by ``data.source``; only this stage imports the source modules.
:func:`resolve_source` lives in the data stage (:mod:`seaice_utils.data.dataset`) and is
re-exported here for notebook 01's handover check.
"""

from seaice_utils.collect.figure import collection_figure
from seaice_utils.collect.products import CollectionUnavailable
from seaice_utils.collect.query import access_rows, ee_request, query_rows, stac_request
from seaice_utils.collect.run import collect
from seaice_utils.data.dataset import resolve_source

__all__ = ["CollectionUnavailable", "access_rows", "collect", "collection_figure", "ee_request",
           "query_rows", "resolve_source", "stac_request"]
