"""The module self-test (what Slicer's 'Reload and Test' runs) in pytest with slicer-core: a phantom exam,
the real out-of-process pipeline with the shipped demo model, checks of segments and table."""
from __future__ import annotations

from pathlib import Path

import pytest

from BreastLesionSegLib.selftest import SelfTestConfig, SelfTestError, run_self_test

ROOT = Path(__file__).resolve().parents[3]
DEMO_MODEL = ROOT / "models" / "mm3dunet-phantom-demo"


@pytest.mark.slow
def test_self_test_with_the_shipped_model(ctx, tmp_path):
    if not (DEMO_MODEL / "model_card.json").is_file():
        pytest.fail(f"the shipped demo model is missing at {DEMO_MODEL} (the self-test needs it)")
    report = run_self_test(ctx, tmp_path / "work", SelfTestConfig(model=str(DEMO_MODEL), device="cpu", threads=2))
    print(report)
    assert report.n_found_lesions >= 1 and report.table_rows == report.n_found_lesions + 1
    assert report.lesion_dice >= 0.5 and report.breast_dice >= 0.8
    assert report.segment_names[:2] == ["Breast left", "Breast right"]


def test_self_test_fails_loudly_with_a_useless_model(ctx, tmp_path, tiny_model_dir):
    """The self-test must be able to fail: random weights cannot find the phantom's lesions."""
    with pytest.raises(SelfTestError, match="lesion Dice") as err:
        run_self_test(ctx, tmp_path / "work", SelfTestConfig(model=str(tiny_model_dir), device="cpu", threads=1,
                                                             size=(56, 32, 16)))
    print(err.value)
