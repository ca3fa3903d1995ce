"""What a user sees on the console: the ETA math (pure), the search's and the farm's progress
lines (fed with fake trials and a fake clock, and read back by ``privar status``'s parser), and
the quiet console's settings. The quiet console end to end is test_cli.py's."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from privar import console as console_module
from privar.console import clock, configure_console, console_verbose, progress_note, time_left
from privar.farm.run import Tally
from privar.recipes.submit import progress


def test_time_left_is_the_rate_so_far() -> None:
    assert time_left(0, 10, 5.0) is None  # no unit done: no rate yet
    assert time_left(2, 10, 20.0) == pytest.approx(80.0)  # 10 s a unit, 8 to go
    assert time_left(10, 10, 100.0) == 0.0
    assert time_left(12, 10, 100.0) == 0.0  # never negative
    # Two trials side by side, 3 epochs each in 60 s: 6 epochs a minute, 6 more to go.
    assert time_left(6, 12, 60.0) == pytest.approx(60.0)
    assert time_left(0.5, 2, 10.0) == pytest.approx(30.0)  # fractions of a unit are fine


def test_clock() -> None:
    assert clock(0) == "00:00"
    assert clock(151) == "02:31"
    assert clock(59.6) == "01:00"
    assert clock(3599.6) == "1:00:00"
    assert clock(3725) == "1:02:05"
    assert clock(-3) == "00:00"


def test_progress_note() -> None:
    assert progress_note(0, 8, 5) == "00:05 elapsed"
    assert progress_note(1, 4, 30) == "00:30 elapsed, ~01:30 left"
    assert progress_note(4, 4, 120) == "02:00 elapsed"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_farm_tally_counts_tasks_and_estimates_the_rest() -> None:
    t = FakeClock()
    tally = Tally(3, clock=t)
    t.now += 10
    assert tally.tick() == "[1/3 done, 00:10 elapsed, ~00:20 left]"
    t.now += 50
    assert tally.tick() == "[2/3 done, 01:00 elapsed, ~00:30 left]"
    t.now += 5
    assert tally.tick() == "[3/3 done, 01:05 elapsed]"


# --------------------------------------------------------------------------- search progress


@pytest.fixture
def search_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    import privar.search.tuner as tuner

    t = FakeClock()
    monkeypatch.setattr(tuner, "_now", t)
    return t


def _trial(trial_id: str, status: str = "RUNNING", epoch: int = 0) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, status=status, local_path=f"/tune/{trial_id}",
                           last_result={"epoch": epoch} if epoch else {})  # fmt: skip


def _result(epoch: int) -> dict:
    return {"epoch": epoch, "action_acc": 0.5, "privacy_acc": 0.25}


def test_search_lines_say_trial_number_elapsed_and_left(search_clock: FakeClock) -> None:
    """Two trials of 2 epochs side by side, then the last two: 8 trial-epochs in all."""
    from privar.search.tuner import _Progress

    said: list[str] = []
    p = _Progress(epochs=2, num_trials=4)
    p.say = said.append
    p.setup(total_num_samples=4)
    a, b = _trial("a_00000"), _trial("b_00001")
    trials = [a, b]
    p.on_step_begin(0, trials)
    search_clock.now += 30
    p.on_trial_result(1, trials, a, _result(1))
    p.on_trial_result(1, trials, b, _result(1))
    search_clock.now += 30
    p.on_trial_result(2, trials, a, _result(2))
    p.on_trial_complete(2, trials, a)
    c = _trial("c_00002")
    trials.append(c)
    p.on_trial_complete(3, trials, b)  # stopped early by the scheduler after 1 epoch
    p.on_trial_error(4, trials, c)
    assert said == [
        "  trial a_00000 epoch 1/2: action_acc 0.500  privacy_acc 0.250  "
        "[trial 1/4, 00:30 elapsed, ~03:30 left]",
        "  trial b_00001 epoch 1/2: action_acc 0.500  privacy_acc 0.250  "
        "[trial 2/4, 00:30 elapsed, ~01:30 left]",
        "  trial a_00000 epoch 2/2: action_acc 0.500  privacy_acc 0.250  "
        "[trial 1/4, 01:00 elapsed, ~01:40 left]",
        "  trial a_00000 finished  [trial 1/4, 01:00 elapsed, ~01:40 left]",
        # b's second epoch will never run: 4 of 8 done.
        "  trial b_00001 finished (stopped early after epoch 1)  [trial 2/4, 01:00 elapsed, "
        "~01:00 left]",
        "  trial c_00002 failed: see /tune/c_00002  [trial 3/4, 01:00 elapsed, ~00:20 left]",
    ]
    # `privar status` reads how far a run got from these lines.
    log = "study s: scheme adversarial, encoder bdq, 4 trials (random)\n" + "\n".join(said[:3])
    assert progress(log) == "search 0/4 trials done; last: trial a_00000 epoch 2/2"
    assert progress(log + "\n" + "\n".join(said[3:])) == (
        "search 3/4 trials done; last: trial a_00000 epoch 2/2")  # fmt: skip


def test_a_resumed_search_clocks_only_its_own_work(search_clock: FakeClock) -> None:
    """Resumed with one trial finished and one at epoch 2 of 4: 6 of 16 epochs were done by an
    earlier driver; the estimate comes from this session's rate over the 10 left."""
    from privar.search.tuner import _Progress

    said: list[str] = []
    p = _Progress(epochs=4, num_trials=4)
    p.say = said.append
    p.t0 = 0.0  # what an earlier driver pickled with the experiment
    p.setup(total_num_samples=4)
    done, half = _trial("a_00000", "TERMINATED", 4), _trial("b_00001", "PENDING", 2)
    trials = [done, half]
    p.on_step_begin(0, trials)
    search_clock.now += 20
    p.on_trial_result(1, trials, half, _result(3))
    assert said[-1].endswith("[trial 2/4, 00:20 elapsed, ~03:00 left]")


def test_a_progress_pickled_by_an_older_privar_still_works(search_clock: FakeClock) -> None:
    from privar.search.tuner import _Progress

    old = _Progress.__new__(_Progress)
    old.__setstate__({"epochs": 2, "say": print})  # no trial count, no clock
    old.setup(total_num_samples=3)
    assert old.num_trials == 3 and old.t0 is None


# --------------------------------------------------------------------------- quiet console


@pytest.fixture
def quiet_reset(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """configure_console's process-wide settings, undone after the test."""
    for key in console_module.QUIET_ENV:
        monkeypatch.setenv(key, "")  # so that monkeypatch puts back what was there, or nothing
        monkeypatch.delenv(key)
    monkeypatch.setattr(console_module, "_verbose", None)
    mlflow_level = logging.getLogger("mlflow").level
    with warnings.catch_warnings():
        yield
    logging.getLogger("mlflow").setLevel(mlflow_level)


def test_the_quiet_console(quiet_reset: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert console_verbose() and console_module.ray_logging_level() == logging.WARNING  # as before
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")  # a user's own setting
    configure_console(False)
    assert not console_verbose()
    assert console_module.ray_logging_level() == logging.ERROR
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert os.environ["RAY_DATA_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"  # kept
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("deprecated inside Ray", FutureWarning, "w.py", 1,
                               module="ray.tune.tuner")  # fmt: skip
        warnings.warn_explicit("privar's own", UserWarning, "w.py", 1, module="privar.x")
    assert [str(w.message) for w in caught] == ["privar's own"]


def test_the_verbose_console(quiet_reset: None) -> None:
    configure_console(True)
    assert console_verbose() and console_module.ray_logging_level() == logging.INFO
    assert not any(key in os.environ for key in console_module.QUIET_ENV)
