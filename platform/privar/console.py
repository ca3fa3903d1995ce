"""What the console shows while privar works, and how long work has left.

A command that starts Ray calls :func:`configure_console` first. Unless it asks for
``--verbose``, the console then shows privar's own lines and real errors only: not the output of
Ray's workers (``log_to_driver``), Ray's, Tune's and Ray Data's INFO and WARNING lines and
progress bars, Optuna's INFO lines, MLflow's INFO lines, download bars and links to each run it
ends, or the library warnings a user can do nothing about. A trial or farm job that fails still
says so, in privar's lines, with its error. Long work says how far it got with
:func:`progress_note` (elapsed time and an estimate of what is left, from :func:`time_left`,
pure arithmetic).
"""

from __future__ import annotations

import logging
import os
import warnings

# None: no command configured the console (privar used as a library, the tests): every library
# prints as it does by itself (Ray's WARNING lines and its workers' output, as before).
_verbose: bool | None = None

#: Set for a quiet console, before MLflow and Ray Data are imported (they read these once), and
#: inherited by the workers of a local Ray.
QUIET_ENV = {
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # "View run ... at:" as every run ends
    "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
    "TORCH_LOGS": "-export",  # torch.export's notes on shapes it specialised, when exporting
}
# Libraries whose Python warnings (deprecations inside Ray, MLflow, Optuna...) mean nothing to a
# user of the command line.
_QUIET_WARNINGS = r"(ray|mlflow|optuna|alembic|sqlalchemy|pydantic)(\..*)?$"


def configure_console(verbose: bool) -> None:
    """What the console shows from here on, for a command that starts Ray (``privar run``,
    ``resume``, ``farm``, ``train``). ``verbose``: everything every library prints, as it prints
    it (Ray at INFO, its workers' output, Ray Data's progress, Optuna's and MLflow's INFO lines).
    Otherwise privar's lines and real errors only (the module docstring lists what goes). Call it
    before Ray and MLflow start; what it sets holds for this process."""
    global _verbose
    _verbose = verbose
    if verbose:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)  # the user's own setting wins
    warnings.filterwarnings("ignore", module=_QUIET_WARNINGS)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # in case it is imported already


def console_verbose() -> bool:
    """False when a command asked for a quiet console (:func:`configure_console`)."""
    return _verbose is not False


def quiet_optuna() -> None:
    """Optuna's INFO lines ("A new study created in memory...") hidden on a quiet console.
    Optuna sets its level when imported, so this runs after that, where the search builds it."""
    if _verbose is False:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)


def ray_logging_level() -> int:
    """The level of Ray's driver-side logger: ERROR on a quiet console (Ray's warnings, such as
    its token-authentication notice, mean nothing to a user), INFO when verbose, else WARNING."""
    return {None: logging.WARNING, True: logging.INFO, False: logging.ERROR}[_verbose]


def quiet_ray_data() -> None:
    """Ray Data on this driver (the clip cache is decoded here): no progress bars, no "Starting
    execution" plan, and its console shows errors only, as Ray's (its log files, in the Ray
    session's ``logs/ray-data``, keep everything)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    for handler in logging.getLogger("ray.data").handlers:
        if handler.get_name() == "console":
            handler.setLevel(logging.ERROR)


def time_left(done: float, total: float, elapsed_s: float) -> float | None:
    """Seconds left to finish ``total`` units of work (trial epochs, farm jobs) when ``done`` of
    them took ``elapsed_s``, at the rate so far: ``elapsed_s * (total - done) / done``. ``None``
    before the first unit is done (no rate yet); 0 once ``done >= total``. Units done side by
    side count as such: the rate is the throughput of all of them together."""
    if done <= 0 or elapsed_s < 0:
        return None
    return max(total - done, 0) * elapsed_s / done


def clock(seconds: float) -> str:
    """``MM:SS``, or ``H:MM:SS`` from an hour on: ``clock(151) == "02:31"``."""
    s = max(0, round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m:02d}:{s % 60:02d}"


def progress_note(done: float, total: float, elapsed_s: float) -> str:
    """``02:31 elapsed, ~04:10 left``; only the elapsed time before the first unit is done or
    once all are (:func:`time_left`)."""
    left = time_left(done, total, elapsed_s)
    if left is None or done >= total:
        return f"{clock(elapsed_s)} elapsed"
    return f"{clock(elapsed_s)} elapsed, ~{clock(left)} left"
