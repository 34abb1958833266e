"""Every published figure of the paper (Iqrah et al., IPDPS workshops 2024), in one place.

Tables and figures of the compendium print these beside the measured values.
"""

from __future__ import annotations

#: Iqrah et al. 2024, Table I: processes -> seconds for 4224 tiles (4-core i5 with hyper-threading).
PAPER_TABLE1 = {1: 17.40, 2: 8.89, 4: 4.69, 6: 4.10, 8: 3.89}


#: Iqrah et al. 2024, Table II: (executors, cores) -> (load s, map s, reduce s), 4-node cluster.
PAPER_TABLE2 = {(1, 1): (108, 0.4, 390), (1, 2): (58, 0.4, 174), (1, 4): (33, 0.3, 72),
                (2, 1): (56, 0.3, 156), (2, 2): (31, 0.3, 84), (2, 4): (19, 0.3, 41),
                (4, 1): (31, 0.2, 78), (4, 2): (17, 0.2, 39), (4, 4): (12, 0.3, 24)}


#: Table III of the paper (DGX A100, batch 32 per GPU, 50 epochs), for comparison plots.
PAPER_TABLE3 = [
    {"workers": 1, "total_s": 280.72, "s_per_epoch": 5.5, "images_per_s": 585.88, "speedup": 1.00},
    {"workers": 2, "total_s": 142.98, "s_per_epoch": 2.778, "images_per_s": 1160.81, "speedup": 1.96},
    {"workers": 4, "total_s": 74.09, "s_per_epoch": 1.45, "images_per_s": 2229.56, "speedup": 3.79},
    {"workers": 6, "total_s": 51.56, "s_per_epoch": 0.97, "images_per_s": 3330.03, "speedup": 5.44},
    {"workers": 8, "total_s": 38.91, "s_per_epoch": 0.79, "images_per_s": 4248.56, "speedup": 7.21},
]


#: Table IV of the paper: pixel accuracy in %, keyed by (model, input).
PAPER_TABLE4 = {("U-Net-Man", "original"): 91.39, ("U-Net-Auto", "original"): 90.18,
                ("U-Net-Man", "filtered"): 98.40, ("U-Net-Auto", "filtered"): 98.97}


#: Table V of the paper: pixel accuracy in %, keyed by (model, input, stratum) with stratum
#: "above" (> 10 % cloud/shadow) or "below".
PAPER_TABLE5 = {
    ("U-Net-Man", "original", "above"): 88.74, ("U-Net-Auto", "original", "above"): 79.91,
    ("U-Net-Man", "filtered", "above"): 98.91, ("U-Net-Auto", "filtered", "above"): 99.28,
    ("U-Net-Man", "original", "below"): 92.27, ("U-Net-Auto", "original", "below"): 93.60,
    ("U-Net-Man", "filtered", "below"): 98.23, ("U-Net-Auto", "filtered", "below"): 98.87}


#: SSIM of auto-labels against manual labels in the paper, %.
PAPER_AUTOLABEL_SSIM = {"original": 89.0, "filtered": 99.64}


#: Published speedups (Tables I-III), derived from the tables above: (workers, speedup) points.
#: Table I: the 1-process time over each time; Table II: reduce-step speedup of each executors x
#: cores configuration against 1 x 1, by total cores; Table III: its speedup column.
PAPER_SPEEDUPS = {
    "Table I": {"what": "multiprocessing auto-labelling (4-core i5)", "x": "processes",
                "points": [(p, PAPER_TABLE1[1] / s) for p, s in PAPER_TABLE1.items()]},
    "Table II": {"what": "PySpark, reduce step (4 nodes x 4 cores)", "x": "executors x cores",
                 "points": [(e * c, PAPER_TABLE2[(1, 1)][2] / t[2])
                            for (e, c), t in PAPER_TABLE2.items()]},
    "Table III": {"what": "Horovod training (DGX A100)", "x": "GPUs",
                  "points": [(r["workers"], r["speedup"]) for r in PAPER_TABLE3]},
}
