"""The package layout: `platform/` must never shadow the standard library's `platform`."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_platform_is_still_the_standard_library() -> None:
    # From the repository root, where a `platform` folder sits on the path.
    code = "import platform, privar; print(platform.__file__); print(platform.python_version())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert Path(out[0]).parent == Path(sysconfig.get_paths()["stdlib"])
    assert out[1] == ".".join(map(str, sys.version_info[:3]))
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_torch_ray_and_mlflow_import_beside_privar() -> None:
    # greenlet: without it Optuna's GP sampler warns on the console and optimises one start at
    # a time
    code = "import privar, torch, ray, mlflow, decord, av, optuna, greenlet; print('ok')"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_validating_a_study_and_starting_a_worker_skip_torchvision() -> None:
    """Importing torchvision takes over a second (it pulls in torch._dynamo): the model
    registries, the study checks and what a trial or farm worker imports leave it to the
    builders of torchvision's models."""
    code = ("import sys\n"
            "import privar.models.action, privar.models.privacy, privar.models.stat\n"
            "import privar.validate, privar.farm.run, privar.search.trial\n"
            "from privar.models import ACTION_MODELS\n"
            "ACTION_MODELS.create('baby3d', num_classes=2)\n"
            "print('torchvision' in sys.modules)\n"
            "ACTION_MODELS.create('r3d_18', num_classes=2)\n"
            "print('torchvision' in sys.modules)\n")  # fmt: skip
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.stdout.split() == ["False", "True"], p.stderr[-2000:]
