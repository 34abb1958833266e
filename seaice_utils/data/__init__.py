"""Stage data: the embedded synthetic scenes, the dataset catalogue and the tile layers.

Public face used by the notebooks and the command line; the modules hold the detail.
"""

from seaice_utils.data.dataset import (SceneRecord, ensure_dataset, ensure_synthetic_dataset,
                                       load_cloud, load_scene, load_truth, read_catalogue,
                                       resolve_source)
from seaice_utils.data.season import Season, make_season, read_season_csv, read_truth_areas
from seaice_utils.data.synthetic import synthesize_scene
from seaice_utils.data.tiles import prepare_tiles, read_tile_index, tile_path

__all__ = ["SceneRecord", "ensure_dataset", "ensure_synthetic_dataset", "load_cloud", "load_scene",
           "load_truth", "read_catalogue", "resolve_source", "synthesize_scene", "prepare_tiles",
           "read_tile_index", "tile_path", "Season", "make_season", "read_season_csv",
           "read_truth_areas"]
