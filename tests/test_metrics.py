import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from seaice_utils.errors import InputError
from seaice_utils.core.metrics import (classification_report, confusion_counts, confusion_percent,
                                       label_ssim, metrics_row, pixel_accuracy, tile_confusions,
                                       tile_confusions_by_key)


def test_confusion_in_paper_orientation_columns_sum_to_100(rng):
    ref = rng.integers(0, 3, 1000).astype(np.uint8)
    pred = np.where(rng.random(1000) < 0.8, ref, rng.integers(0, 3, 1000)).astype(np.uint8)
    c = confusion_counts(pred, ref)
    assert c[1, 2] == ((pred == 1) & (ref == 2)).sum()   # row predicted, column reference
    assert np.allclose(confusion_percent(c).sum(axis=0), 100)


def test_nodata_ignored_everywhere():
    pred = np.array([0, 1, 2, 255, 0], np.uint8)
    ref = np.array([0, 1, 2, 0, 255], np.uint8)
    assert pixel_accuracy(pred, ref) == 1.0
    assert confusion_counts(pred, ref).sum() == 3


def test_report_matches_scikit_learn(rng):
    ref = rng.integers(0, 3, 5000).astype(np.uint8)
    pred = np.where(rng.random(5000) < 0.7, ref, rng.integers(0, 3, 5000)).astype(np.uint8)
    rep = classification_report(pred, ref)
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(ref, pred, average=avg, labels=[0, 1, 2])
        assert rep[avg]["precision"] == pytest.approx(p)
        assert rep[avg]["recall"] == pytest.approx(r)
        assert rep[avg]["f1"] == pytest.approx(f)
    p, r, f, s = precision_recall_fscore_support(ref, pred, labels=[0, 1, 2])
    assert rep["per_class"]["thin ice"]["f1"] == pytest.approx(f[1])
    assert rep["per_class"]["thick ice"]["support"] == s[2]
    assert rep["accuracy"] == pytest.approx((pred == ref).mean())


def test_iou_of_one_pixel_per_class():
    pred = np.array([0, 1, 2, 2], np.uint8)
    ref = np.array([0, 1, 2, 1], np.uint8)
    rep = classification_report(pred, ref)
    assert rep["per_class"]["open water"]["iou"] == 1.0
    assert rep["per_class"]["thin ice"]["iou"] == pytest.approx(0.5)
    assert rep["per_class"]["thick ice"]["iou"] == pytest.approx(0.5)


def test_ssim_identical_is_one_and_drops_with_noise(rng):
    a = np.zeros((64, 64), np.uint8)
    a[16:48, 16:48] = 2
    a[:, :8] = 1
    assert label_ssim(a, a) == pytest.approx(1.0)
    noisy = a.copy()
    flip = rng.random(a.shape) < 0.1
    noisy[flip] = (noisy[flip] + 1) % 3
    assert label_ssim(noisy, a) < 0.9


def test_ssim_ignores_nodata():
    a = np.ones((32, 32), np.uint8)
    b = a.copy()
    b[:, 16:] = 255      # no-data half
    assert label_ssim(b, a) == pytest.approx(1.0)


def test_shape_mismatch_and_all_nodata():
    with pytest.raises(InputError, match="shapes differ"):
        pixel_accuracy(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    assert np.isnan(pixel_accuracy(np.full(3, 255, np.uint8), np.zeros(3, np.uint8)))


def test_tile_confusions_by_key_and_metrics_row(rng):
    ref = rng.integers(0, 3, (4, 8, 8)).astype(np.uint8)
    preds = {("a", "x"): ref.copy(), ("b", "y"): np.zeros_like(ref)}
    got = tile_confusions_by_key(preds, ref)
    assert list(got) == list(preds)
    for k, p in preds.items():
        np.testing.assert_array_equal(got[k], tile_confusions(p, ref))
        np.testing.assert_array_equal(got[k].sum(axis=0), confusion_counts(p, ref))
    row = metrics_row(classification_report(preds[("a", "x")], ref))
    assert row["accuracy_pct"] == 100 and row["n_pixels"] == ref.size
    assert {f"{a}_{k}_pct" for a in ("macro", "weighted") for k in ("precision", "recall", "f1",
                                                                    "iou")} <= set(row)
