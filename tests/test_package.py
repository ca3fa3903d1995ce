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


def test_the_gpu_benchmark_needs_only_pytorch() -> None:
    """``benchmarks/gpu_step.py`` (what ``scripts/device-check`` runs on a lent GPU machine,
    which has PyTorch but not Ray, MLflow, Optuna or the video decoders) imports with those
    missing."""
    code = (
        "import importlib.abc, importlib.machinery, runpy, sys\n"
        "MISSING = {'ray', 'mlflow', 'optuna', 'decord', 'av'}\n"
        "class Gone(importlib.abc.Loader):\n"
        "    def create_module(self, spec):\n"
        "        raise ImportError(f'{spec.name} is not on the GPU machine')\n"
        "    def exec_module(self, module):\n"
        "        pass\n"
        "class Missing(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in MISSING:\n"
        "            return importlib.machinery.ModuleSpec(name, Gone())\n"
        "sys.meta_path.insert(0, Missing())\n"
        "runpy.run_path('benchmarks/gpu_step.py', run_name='gpu_step')\n"
        "print('imported')\n"
        "import ray\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.stdout.split() == ["imported"], p.stderr[-2000:]
    # ... and not because Ray got through: the blocker holds.
    assert "ray is not on the GPU machine" in p.stderr.splitlines()[-1], p.stderr[-2000:]


def test_the_device_study_without_a_bundle_says_so_in_one_line(tmp_path: Path) -> None:
    """``scripts/device-study`` installs nothing and runs nothing when the offline bundle it
    carries to the GPU machine is missing: one line naming the folder, exit code 2."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "device-study"
    script.write_bytes((ROOT / "scripts" / "device-study").read_bytes())
    script.chmod(0o755)
    p = subprocess.run([str(script)], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out")})  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert p.stderr.splitlines() == [
        "scripts/device-study: no offline bundle in .bundle/ (see this script's header)"
    ]
    assert list((tmp_path / "out").iterdir()) == []
