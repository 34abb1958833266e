"""Bottom layer: scene I/O, tiling, class codes and palette, metrics and figure helpers.

Pure array and file code; imports nothing above it (only :mod:`seaice_utils.errors`).
"""
