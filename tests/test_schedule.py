"""The learning-rate schedule and early stopping are derived from history alone and agree with Keras."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench.training.schedule import MONITOR, plateau_decays, should_stop_early

# Keras takes the first value as the best even when it is NaN, after which nothing ever improves;
# medbench lets the first defined value count instead (see test_undefined_first_epoch_does_not_poison_best),
# so the comparison with Keras starts from a defined value. Keras compares in float32, so the values
# are AUROC-like numbers on a grid float32 represents distinctly.
auroc = st.integers(0, 1000).map(lambda i: i / 1000)
values = st.builds(
    lambda first, rest: [first, *rest], auroc, st.lists(st.one_of(auroc, st.just(math.nan)), max_size=11)
)


def _history(series: list[float]) -> list[dict[str, float]]:
    return [{"epoch": i + 1, MONITOR: value} for i, value in enumerate(series)]


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    return model


@settings(max_examples=60, deadline=None)
@given(series=values, patience=st.integers(1, 3))
def test_plateau_decays_match_keras_reduce_lr_on_plateau(series: list[float], patience: int) -> None:
    model = _model()
    callback = keras.callbacks.ReduceLROnPlateau(
        monitor=MONITOR, mode="max", factor=0.5, patience=patience, min_delta=0.0, cooldown=0, min_lr=0.0
    )
    callback.set_model(model)
    callback.on_train_begin()
    keras_decays = []
    for epoch, value in enumerate(series):
        before = float(model.optimizer.learning_rate.numpy())
        callback.on_epoch_end(epoch, {MONITOR: value})
        keras_decays.append(float(model.optimizer.learning_rate.numpy()) < before)
    assert plateau_decays(_history(series), patience) == keras_decays


@settings(max_examples=60, deadline=None)
@given(series=values, patience=st.integers(1, 3))
def test_early_stopping_matches_keras(series: list[float], patience: int) -> None:
    model = _model()
    callback = keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=patience, min_delta=0.0)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(series):
        callback.on_epoch_end(epoch, {MONITOR: value})
        expected = bool(model.stop_training)
        assert should_stop_early(_history(series[: epoch + 1]), patience) == expected, (series, epoch)
        if expected:
            break


def test_no_patience_never_stops() -> None:
    assert not should_stop_early(_history([0.9, 0.1, 0.1, 0.1]), None)


@pytest.mark.parametrize(("series", "expected"), [([0.5, 0.6, 0.6, 0.6], [False, False, True, True])])
def test_plateau_decays_example(series: list[float], expected: list[bool]) -> None:
    assert plateau_decays(_history(series), 1) == expected
    assert np.sum(plateau_decays(_history(series), 2)) == 1


def test_undefined_first_epoch_does_not_poison_best() -> None:
    series = [math.nan, 0.6, 0.7, 0.8]
    assert plateau_decays(_history(series), 1) == [True, False, False, False]
    assert not should_stop_early(_history(series), 2)


def test_schedule_decays_on_plateau_stops_and_finishes_from_history_alone() -> None:
    from medbench.training.schedule import Schedule, best_epoch

    schedule = Schedule(learning_rate=1e-3, lr_factor=0.5, epochs=5, plateau_patience=1, early_stopping_patience=2)
    history = _history([0.6, 0.7])
    assert schedule.rate_at_start(3) is None, "the plateau schedule sets no rate when an epoch starts"
    assert schedule.after_epoch(history, 1e-3).next_rate is None
    stalled = _history([0.6, 0.7, 0.65])
    decision = schedule.after_epoch(stalled, 1e-3)
    assert decision.next_rate == pytest.approx(5e-4) and not decision.stop
    assert schedule.after_epoch(_history([0.6, 0.7, 0.65, 0.6]), 5e-4).stop
    assert not schedule.finished(history) and schedule.finished(_history([0.6, 0.7, 0.65, 0.6]))
    assert schedule.finished(_history([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert best_epoch(stalled) == 2 and best_epoch(_history([math.nan, math.nan])) == 2


def test_epoch_schedule_sets_the_decayed_rate_at_each_start() -> None:
    from medbench.training.schedule import Schedule

    schedule = Schedule(learning_rate=1e-2, lr_factor=0.1, epochs=3, lr_schedule="epoch")
    assert [schedule.rate_at_start(epoch) for epoch in range(3)] == pytest.approx([1e-2, 1e-3, 1e-4])
    assert schedule.after_epoch(_history([0.5, 0.4]), 1e-3).next_rate is None


def test_schedule_of_a_spec_takes_the_benchmark_and_the_options() -> None:
    from medbench.benchmark import ExperimentOptions, ExperimentSpec
    from medbench.training.schedule import Schedule

    spec = ExperimentSpec(
        "demo_BCE_E4_B16_C0_N5_D32_DS8020_25LR6_LF25_Adam",
        options=ExperimentOptions(lr_schedule="epoch", plateau_patience=2, early_stopping_patience=3),
    )
    assert Schedule.for_spec(spec) == Schedule(2.5e-5, 0.25, 4, "epoch", 2, 3)
