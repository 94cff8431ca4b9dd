"""The servers freeze what loading left and collect the young generation less often (project/gc_tuning.py)."""

import gc

import pytest

from project.gc_tuning import TUNED_THRESHOLDS, tune_after_load


@pytest.fixture
def restored_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_after_loading_the_heap_is_frozen_and_the_tuned_thresholds_apply(monkeypatch, restored_gc):
    monkeypatch.delenv("GC_THRESHOLDS", raising=False)
    tune_after_load()
    assert gc.get_freeze_count() > 10_000  # Django and the project, loaded by the test run
    assert gc.get_threshold() == TUNED_THRESHOLDS


def test_the_environment_can_set_the_thresholds_or_leave_pythons_own(monkeypatch, restored_gc):
    monkeypatch.setenv("GC_THRESHOLDS", "1000,5,7")
    tune_after_load()
    assert gc.get_threshold() == (1000, 5, 7)
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv("GC_THRESHOLDS", "default")
    tune_after_load()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == (700, 10, 10)
