"""Security: what privar loads runs no code (checkpoints and encoders with ``weights_only=True``,
YAML with the safe loader, nothing in a study imported or evaluated: registry names only); the
servers it starts listen on loopback, the cluster configs put MLflow on the private network and
keep Ray's token authentication on; and the credential grep of the end-to-end study
(test_study_run.py) would catch a leak."""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import tiny_study
from leaks import CREDENTIALS, find_leaks, planted_credentials
from privar.cli import main

ROOT = Path(__file__).resolve().parent.parent
# Python that privar runs: the package, the scripts, the benchmarks.
SOURCES = sorted([*(ROOT / "platform" / "privar").rglob("*.py"),
                  *(ROOT / "benchmarks").glob("*.py"),
                  ROOT / "scripts" / "cluster-check"])  # fmt: skip
CLUSTER_CONFIGS = [ROOT / "cluster.yaml", ROOT / "cluster-local.yaml"]


@functools.cache
def calls() -> list[tuple[Path, ast.Call, str]]:
    """Every call in :data:`SOURCES`: (file, node, the callee as written, e.g. ``torch.load``)."""
    out = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                out.append((path, node, ast.unparse(node.func)))
    return out


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


# --- what privar loads --------------------------------------------------------------------------


def test_every_torch_load_takes_weights_only() -> None:
    """A checkpoint, encoder or pretrained file is tensors and plain data: ``torch.load`` with
    ``weights_only=True`` unpickles nothing else. Nothing unpickles any other way."""
    # Three at least: training checkpoints, encoder artifacts, pretrained weights.
    loads = [(p, n) for p, n, f in calls() if f == "torch.load"]
    assert len(loads) >= 3, "torch.load moved: this test no longer sees it"
    for path, node in loads:
        only = {k.arg: k.value for k in node.keywords}.get("weights_only")
        assert isinstance(only, ast.Constant) and only.value is True, where(path, node)
    unpicklers = {"pickle.load", "pickle.loads", "cloudpickle.load", "cloudpickle.loads",
                  "mlflow.pytorch.load_model", "mlflow.pyfunc.load_model", "joblib.load",
                  "dill.load", "torch.package.PackageImporter"}  # fmt: skip
    pickled = {"np.load", "numpy.load"}  # with allow_pickle
    found = [where(p, n) for p, n, f in calls() if f in unpicklers or (
             f in pickled and any(k.arg == "allow_pickle" for k in n.keywords))]  # fmt: skip
    assert not found, found
    # TorchScript runs code of its own: export.py loads back only the file it has just written.
    jit = [where(p, n) for p, n, f in calls() if f == "torch.jit.load"]
    assert all(w.startswith("platform/privar/export.py:") for w in jit), jit


def test_every_yaml_load_is_safe() -> None:
    unsafe = {"yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.unsafe_load_all",
              "yaml.full_load", "yaml.full_load_all", "yaml.add_constructor"}  # fmt: skip
    found = [where(p, n) for p, n, f in calls() if f in unsafe]
    assert not found, found
    loaders = re.compile(r"\b(UnsafeLoader|FullLoader|yaml\.Loader|CLoader|CUnsafeLoader)\b")
    found = [str(p.relative_to(ROOT)) for p in SOURCES if loaders.search(p.read_text())]
    assert not found, found
    assert [f for p, n, f in calls() if f == "yaml.safe_load"], "no yaml.safe_load seen at all"


def test_nothing_is_evaluated_or_imported_by_name() -> None:
    """No eval, exec or compile of text, no import of a computed name except privar's own lazy
    imports, whose names are constants of the module that imports them."""
    found = [where(p, n) for p, n, f in calls() if f in ("eval", "exec", "compile",
             "__import__", "pydoc.locate", "importlib.__import__", "runpy.run_path",
             "runpy.run_module")]  # fmt: skip
    assert not found, found
    dynamic = sorted((str(p.relative_to(ROOT)), ast.unparse(n.args[0])) for p, n, f in calls()
                     if f == "importlib.import_module")  # fmt: skip
    assert dynamic == [
        ("platform/privar/__init__.py", "_LAZY[name]"),  # a fixed table of registry functions
        ("platform/privar/data/adapters/__init__.py", "f'{__name__}.{m}'"),  # m in _MODULES
    ], dynamic


@pytest.fixture
def trap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module ``privar_trap`` on sys.path that leaves a file behind when imported; returns the
    file's path (which must never exist)."""
    sprung = tmp_path / "sprung"
    (tmp_path / "privar_trap.py").write_text(
        f"import pathlib\npathlib.Path({str(sprung)!r}).touch()\ndef boom(*a, **k): return 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return sprung


NAMED = {"data.adapter": "privar_trap", "data.decoder": "privar_trap.boom",
         "encoder.name": "os.system", "action_model.name": "privar_trap:boom",
         "privacy_model.name": "__import__('privar_trap')", "farm.adversaries[0]": "builtins.eval",
         "farm.reconstruction": "privar_trap.boom", "farm.action_model": "importlib.import_module",
         "farm.baselines[0].name": "privar_trap"}  # fmt: skip


def test_a_study_naming_code_is_refused_and_nothing_is_imported(trap: Path) -> None:
    study = {"name": "trap", "data": {"adapter": NAMED["data.adapter"],
                                      "decoder": NAMED["data.decoder"]},
             "encoder": {"name": NAMED["encoder.name"]},
             "action_model": {"name": NAMED["action_model.name"]},
             "privacy_model": {"name": NAMED["privacy_model.name"]},
             "farm": {"adversaries": [NAMED["farm.adversaries[0]"]],
                      "reconstruction": NAMED["farm.reconstruction"],
                      "action_model": NAMED["farm.action_model"],
                      "baselines": [{"name": NAMED["farm.baselines[0].name"]}]}}  # fmt: skip
    (trap.parent / "trap.yaml").write_text(yaml.safe_dump(study))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["validate", "trap.yaml"]) == 2
    lines = err.getvalue().splitlines()
    for key, name in NAMED.items():  # a line each, naming the key, the name and the known ones
        (line,) = [x for x in lines if x.startswith(f"privar: error: trap.yaml: {key}: ")]
        assert "unknown" in line and repr(name) in line and "known: " in line, line
    # The same names through --set, and a YAML tag that would build an object: one line each.
    for value in ("encoder.name=privar_trap.boom",
                  "encoder.params=!!python/object/apply:privar_trap.boom []"):  # fmt: skip
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["validate", str(ROOT / "studies" / "smoke.yaml"), "--set", value]) == 2
        assert len(err.getvalue().splitlines()) == 1, err.getvalue()
    assert not trap.exists() and "privar_trap" not in sys.modules


# --- the servers privar starts, the cluster configs ---------------------------------------------


def _code(path: Path) -> str:
    """``path`` without its comments (YAML and shell ``#`` comments, Python's too)."""
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in path.read_text().splitlines())


def test_nothing_listens_on_every_interface() -> None:
    """No server privar, its scripts or its cluster configs start binds 0.0.0.0 (or ``::``):
    the local Ray runs without a dashboard, scripts/cluster-check binds loopback, and on a
    cluster the dashboard stays on the head's loopback and MLflow on its private address."""
    for path in [*SOURCES, *CLUSTER_CONFIGS]:
        code = _code(path)
        assert not re.search(r"0\.0\.0\.0|\[::\]|['\"]::['\"]", code), path
    connect = (ROOT / "platform" / "privar" / "cluster.py").read_text()
    assert "include_dashboard=False" in connect  # the local Ray: no dashboard at all
    check = _code(ROOT / "scripts" / "cluster-check")
    assert '"--dashboard-host=127.0.0.1"' in check and '"--node-ip-address=127.0.0.1"' in check
    assert '"server", "--host", "127.0.0.1"' in check
    for path in CLUSTER_CONFIGS:
        config = yaml.safe_load(path.read_text())
        head = " ".join(config["head_start_ray_commands"])
        assert re.findall(r"--dashboard-host=(\S+)", head) == ["127.0.0.1"], path
        (mlflow,) = re.findall(r"mlflow server\s+--host (\"[^\"]+\"|\S+)", head)
        assert "hostname -I" in mlflow, (path, mlflow)  # the head's private address


def test_token_authentication_is_never_turned_off() -> None:
    """Nothing privar ships sets RAY_AUTH_MODE to anything but ``token``, and the cluster configs
    start every node in token mode (test_cluster_config.py checks the token's way to them)."""
    shipped = [*SOURCES, *CLUSTER_CONFIGS, ROOT / "scripts" / "bootstrap", ROOT / "pyproject.toml"]
    for path in shipped:
        for m in re.finditer(r"RAY_AUTH_MODE\W{1,6}(\w+)", _code(path)):
            assert m.group(1) in ("token", "not"), (path, m.group(0))  # "not in os.environ"
    for path in CLUSTER_CONFIGS:
        config = yaml.safe_load(path.read_text())
        starts = [c for key in ("head_start_ray_commands", "worker_start_ray_commands")
                  for c in config[key] if "ray start" in c]  # fmt: skip
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), path


def test_the_local_ray_runs_in_token_mode_without_a_dashboard(ray_local: dict) -> None:
    import ray
    from ray._raylet import AuthenticationMode, get_authentication_mode

    assert get_authentication_mode() == AuthenticationMode.TOKEN
    assert os.environ.get("RAY_AUTH_MODE", "token") == "token"
    assert not ray._private.worker.global_worker.node.webui_url  # no dashboard was started


@pytest.mark.slow  # a refused join waits out Ray's connection retries (~20 s on 2 busy cores)
def test_the_local_ray_refuses_a_driver_without_its_token(ray_local: dict, tmp_path: Path) -> None:
    """A driver with the local Ray's token joins it; `privar run --address` with another token
    is refused, and says so in one line (Ray itself only says it could not connect, after a
    warning a second for 20 s)."""
    import ray

    gcs = ray._private.worker.global_worker.node.gcs_address
    token = os.environ.get("RAY_AUTH_TOKEN") or (Path.home() / ".ray" / "auth_token").read_text()
    code = f"import ray; ray.init(address={gcs!r}, logging_level='ERROR'); print('joined')"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path), RAY_AUTH_MODE="token")  # no ~/.ray/auth_token to fall back on
    p = subprocess.run([sys.executable, "-c", code], env={**env, "RAY_AUTH_TOKEN": token.strip()},
                       capture_output=True, text=True, timeout=180)  # fmt: skip
    assert "joined" in p.stdout and p.returncode == 0, p.stderr[-2000:]

    study = tmp_path / "tiny.yaml"
    study.write_text(tiny_study("tiny"))
    p = subprocess.run([sys.executable, "-m", "privar.cli", "run", str(study), "--address", gcs],
                       env={**env, "RAY_AUTH_TOKEN": "0" * 64}, cwd=tmp_path,
                       capture_output=True, text=True, timeout=180)  # fmt: skip
    assert p.returncode == 2 and p.stderr.splitlines() == [
        f"privar: error: the Ray cluster at {gcs} refused this driver's token (RAY_AUTH_TOKEN, "
        "else ~/.ray/auth_token): use the cluster's own, as README's 'Run on a cluster' shows"
    ], p.stderr[-3000:]
    assert not (tmp_path / "synthetic").exists()  # nothing was built first


# --- the credential grep ------------------------------------------------------------------------


def test_the_credential_grep_finds_a_planted_secret(tmp_path: Path) -> None:
    """The check test_study_run.py runs on a whole study, on a small tree with secrets planted in
    every kind of place it looks: a nested text file, a binary file, a file name, a text (the
    console, an MLflow param); and nothing on a clean tree."""
    values = planted_credentials()
    assert set(CREDENTIALS) <= set(values) and len(set(values.values())) == len(values)
    clean = tmp_path / "clean" / "deep"
    clean.mkdir(parents=True)
    (clean / "params.json").write_text('{"lr": 0.003, "HF_TOKEN": "<unset>"}')
    assert find_leaks(values, {"console": "study tree: done"}, [tmp_path / "clean"]) == []

    tree = tmp_path / "out" / "tree" / "trial-1"
    tree.mkdir(parents=True)
    (tree / "result.json").write_text(f'{{"env": "{values["HF_TOKEN"]}"}}')
    (tree / "encoder.pt").write_bytes(b"\x80\x02" + values["RAY_AUTH_TOKEN"].encode() + b"\x00")
    (tree / f"log-{values['PRIVAR_TEST_SECRET']}.txt").write_text("named after a secret")
    texts = {"console": f"AWS_SECRET_ACCESS_KEY={values['AWS_SECRET_ACCESS_KEY']}",
             "run t1 params": repr({"password": values["MLFLOW_TRACKING_PASSWORD"]})}  # fmt: skip
    found = find_leaks(values, texts, [tmp_path / "out"])
    assert sorted(found) == sorted([
        f"HF_TOKEN in {tree / 'result.json'}", f"RAY_AUTH_TOKEN in {tree / 'encoder.pt'}",
        f"PRIVAR_TEST_SECRET in {tree / ('log-' + values['PRIVAR_TEST_SECRET'] + '.txt')}",
        "AWS_SECRET_ACCESS_KEY in console", "MLFLOW_TRACKING_PASSWORD in run t1 params",
    ])  # fmt: skip
