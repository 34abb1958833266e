"""A season of sea ice: classify every dated scene, mosaic each date, tabulate its areas.

Public face: :func:`run_season` (:mod:`seaice_utils.season.run`), the season's inputs
(:mod:`seaice_utils.season.inputs`) and its output folder's rules
(:mod:`seaice_utils.season.folder`).
"""

from seaice_utils.season.folder import SeasonFolder
from seaice_utils.season.inputs import cloud_masks, season_scenes
from seaice_utils.season.run import (AREAS_HEADER, MIN_OBSERVED_SHARE, SeasonResult,
                                     run_season, season_options)

__all__ = ["run_season", "season_options", "season_scenes", "cloud_masks", "SeasonResult",
           "SeasonFolder", "AREAS_HEADER", "MIN_OBSERVED_SHARE"]
