"""The `privar` command as a user runs it: real files, a real local Ray (two nodes with separate
filesystems are test_two_nodes.py's), and one-line errors with exit code 2 for mistakes a user
can make."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from privar.data.manifest import VideoRecord, write_manifest

BIN = Path(sys.executable).parent
PRIVAR = str(BIN / "privar")


def run(*args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([PRIVAR, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def assert_one_line_error(p: subprocess.CompletedProcess, *needles: str) -> None:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0]


@pytest.fixture
def dataset(tmp_path: Path, make_video) -> Path:
    """A manifest of 8 real videos and 2 broken ones."""
    rows = [
        VideoRecord(make_video(f"v{i}.mp4", num_frames=9), f"a{i % 2}", f"p{i % 3}",
                    "train" if i < 5 else "test")
        for i in range(8)
    ]  # fmt: skip
    (tmp_path / "zero.mp4").touch()
    (tmp_path / "junk.mp4").write_text("junk")
    rows += [VideoRecord(str(tmp_path / n), "a0", "p0", "train") for n in ("zero.mp4", "junk.mp4")]
    return write_manifest(rows, tmp_path / "manifest.csv")


def test_help_lists_the_commands() -> None:
    p = run("--help")
    assert p.returncode == 0
    for cmd in ("run", "data"):
        assert cmd in p.stdout
    assert "synth" in run("data", "--help").stdout


def test_data_check_counts_and_lists_quarantine(dataset: Path, tmp_path: Path) -> None:
    q = tmp_path / "q.csv"
    p = run("data", "check", str(dataset), "--quarantine", str(q))
    assert p.returncode == 0, p.stderr
    assert "10 videos, 8 decodable, 2 quarantined" in p.stdout
    assert "test: 3, train: 5" in p.stdout
    assert f"quarantined: {tmp_path / 'zero.mp4'}: empty file (0 bytes)" in p.stdout
    assert "junk.mp4: cannot open" in p.stdout
    assert q.read_text().count("\n") == 3


def test_data_scan_writes_a_probed_manifest(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "probed.csv"
    p = run("data", "scan", "manifest", str(dataset), "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "8 videos; 2 quarantined" in p.stdout
    body = out.read_text().splitlines()
    assert body[0] == "path,action,privacy,split,num_frames,fps,height,width"
    assert len(body) == 9 and body[1].endswith(",9,25.0,32,40")
    assert (tmp_path / "out" / "probed.quarantine.csv").exists()


def _study(tmp_path: Path, manifest: Path, top: str = "", **data: str) -> Path:
    """One trial of one epoch, no farm: the whole `privar run` path, quickly. Paths are
    relative to ``tmp_path``, where the tests run `privar`: Ray's workers run elsewhere."""
    extra = "".join(f"  {k}: {v}\n" for k, v in data.items())
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"name: tiny\ndata:\n  adapter: manifest\n  root: {manifest.relative_to(tmp_path)}\n"
        f"  clip_len: 4\n  size: [16, 16]\n{extra}"
        "train: {epochs: 1, batch_size: 4}\n"
        "search: {sampler: random, num_trials: 1, concurrency: 1}\nfarm: {enabled: false}\n"
        f"out_dir: out\n{top}"
    )
    return path


def test_run_searches_and_counts_the_quarantined(dataset: Path, tmp_path: Path) -> None:
    p = run("run", str(_study(tmp_path, dataset)), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "data: 8 videos, 2 quarantined" in p.stdout
    assert "quarantined: " in p.stdout and "zero.mp4" in p.stdout and "junk.mp4" in p.stdout
    assert "trial " in p.stdout and "epoch 1/1" in p.stdout
    assert "[trial 1/1, " in p.stdout and " elapsed]" in p.stdout  # how far it got, and when
    assert "Pareto front of tiny (IN-LOOP metrics only" in p.stdout
    assert (tmp_path / "mlflow.db").exists()  # the embedded default store
    # A quiet console: privar's lines; nothing from Ray, its workers, Optuna or MLflow.
    shown = p.stdout + p.stderr
    for noise in (" INFO ", " WARNING ", "pid=", "[I ", "Downloading artifacts"):
        assert noise not in shown, shown[-3000:]


def test_a_trial_decodes_on_its_own_data_cpus(dataset: Path, tmp_path: Path) -> None:
    """No clip cache: every epoch the trial's Ray Data tasks decode the files, on the CPU its
    placement group reserved for them (the other is the trial's). Outside it, none is free.
    With --verbose, what Ray says shows too."""
    study = _study(tmp_path, dataset, top="resources: {cpus: 1, data_cpus: 1}\n",
                   cache_budget_gb="0")  # fmt: skip
    p = run("run", str(study), "--verbose", cwd=tmp_path, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "epoch 1/1" in p.stdout and "Pareto front of tiny" in p.stdout
    assert " INFO " in p.stderr  # Ray's own lines


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("data", "check", "nowhere.csv"), ("nowhere.csv", "no such manifest")),
        (("run", "nowhere.yaml"), ("nowhere.yaml", "no such study file")),
        (("data", "scan", "kinetics", ".", "--out", "m.csv"), ("adapter 'kinetics'",)),
        (("frobnicate",), ("invalid choice",)),
        (
            ("run", "studies/smoke.yaml", "--tracking-uri", "http://127.0.0.1:9"),
            ("cannot reach the MLflow server at http://127.0.0.1:9",),
        ),
        (("farm", "--checkpoint", "x.pt"), ("--checkpoint needs --study",)),
        (
            ("run", "studies/smoke.yaml", "--set", "adversarial.alpha=-1"),
            ("--set: adversarial.alpha: must be >= 0",),
        ),
    ],
)
def test_user_errors_are_one_line(args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    assert_one_line_error(run(*args), *needles)


def test_bad_study_key_is_named(tmp_path: Path, dataset: Path) -> None:
    study = _study(tmp_path, dataset, clip_lenght="4")
    assert_one_line_error(run("run", str(study)), "tiny.yaml: data.clip_lenght: unknown key")


def test_unreachable_cluster_is_named(tmp_path: Path, dataset: Path) -> None:
    p = run("run", str(_study(tmp_path, dataset)), "--address", f"127.0.0.1:{_free_port()}")
    assert_one_line_error(p, "cannot reach the Ray cluster at 127.0.0.1:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
