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
    code = "import privar, torch, ray, mlflow, decord, av, optuna; print('ok')"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
