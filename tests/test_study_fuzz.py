"""Study files and ``--set`` under fuzzing (hypothesis): the shipped studies mutated at random key
paths (wrong types, NaN, infinities, -1, 1e308, huge ints, deep nesting, empty strings, unknown
keys, deleted keys), malformed YAML text, alias bombs and odd ``--set`` strings go through
``privar validate`` and ``privar run`` in this process. Every case ends in exit code 0 or 2; on 2,
in one line per problem naming the file (or flag) and the key path, never a traceback, and
``privar run`` stops in exactly one line before it starts Ray. Settings are bounded and
derandomized, so CI sees the same cases every time."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privar import console
from privar.cli import main
from privar.config import MAX_BYTES, MAX_DEPTH, MAX_VALUES
from privar.recipes import run_study

ROOT = Path(__file__).resolve().parent.parent
SEEDS = {name: yaml.safe_load((ROOT / "studies" / f"{name}.yaml").read_text())
         for name in ("smoke", "baby_stat")}  # fmt: skip
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.data_too_large])  # fmt: skip
Path_ = tuple[Any, ...]  # a key path into YAML data: mapping keys and list indices


@pytest.fixture(scope="module", autouse=True)
def ray_tripwire() -> Iterator[None]:
    """``privar run`` on a study it refuses must never reach Ray: its ``connect`` fails the test.
    The console setting ``privar run -v`` makes is put back for the tests after these."""

    def tripwire(*args: object, **kwargs: object) -> None:
        raise AssertionError("privar run went on to start Ray")

    connect, verbose = run_study.connect, console._verbose
    run_study.connect = tripwire
    yield
    run_study.connect, console._verbose = connect, verbose


def cli(*argv: str) -> tuple[int, list[str], str]:
    """``privar ARGV`` in this process: (exit code, stderr lines, stdout). An exception other than
    the user errors ``main`` turns into exit code 2 fails the test, traceback and all."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(list(argv))
    assert "Traceback" not in err.getvalue() + out.getvalue()
    return rc, err.getvalue().splitlines(), out.getvalue()


def dotted(path: Path_) -> str:
    """A key path as privar's messages write it: ``search.space.adversarial.alpha.low``,
    ``data.size[0]``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


def check_study_file(file: Path, *sets: str) -> list[str]:
    """`privar validate FILE` then, when it refuses the file, `privar run -v FILE`: exit codes 0
    or 2; on 2, one well-formed line per problem from validate and exactly one from run (the
    first problem, counting the rest), before Ray. Returns validate's error lines."""
    flags = [x for s in sets for x in ("--set", s)]
    rc, lines, out = cli("validate", str(file), *flags)
    assert rc in (0, 2), lines
    if rc == 0:
        assert not lines and out.startswith(f"ok: {file} ")
        return []
    where = re.escape(f"{file}" + (" (with --set)" if sets else ""))
    for line in lines:  # the file (or flag), then a key path or what is wrong with the file
        assert re.match(rf"privar: error: ({where}: |--set:? )\S", line), line
    rc, run_lines, _ = cli("run", str(file), "-v", *flags)
    assert rc == 2 and len(run_lines) == 1, run_lines
    more = f" (and {len(lines) - 1} more: run privar validate)" if len(lines) > 1 else ""
    assert run_lines[0] in (lines[0] + more, lines[0]), (run_lines, lines)
    return lines


# --- strategies ---------------------------------------------------------------------------------


def key_paths(data: Any, path: Path_ = ()) -> list[Path_]:
    """Every key path in ``data``, mappings' keys and lists' indices, outermost first."""
    out = [path] if path else []
    if isinstance(data, dict | list):
        for key, value in data.items() if isinstance(data, dict) else enumerate(data):
            out += key_paths(value, (*path, key))
    return out


def get(data: Any, path: Path_) -> Any:
    for key in path:
        data = data[key]
    return data


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


# Values that break a study: wrong types, non-finite and out-of-range numbers, huge ints, deep
# nesting, the empty string, and whatever hypothesis makes of scalars and small collections.
BAD_VALUES = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -1, 0, -1.5, 1e308, -1e308,
                     2**63, -(2**63) - 1, 10**30, 2**32, "", "x", " ", True, False, None, [],
                     {}, [1], {"k": 1}, [[12, 16]], nested(MAX_DEPTH + 4), nested(8)]),
    st.integers(), st.floats(), st.text(max_size=8), st.booleans(),
    st.lists(st.integers() | st.floats() | st.text(max_size=4), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers() | st.floats(), max_size=3),
)  # fmt: skip
SAFE_KEY = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=10)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], str, Path_]:
    """(a shipped study with one mutation, what it was, the key path it touched)."""
    data = yaml.safe_load(yaml.safe_dump(SEEDS[draw(st.sampled_from(sorted(SEEDS)))]))
    kind = draw(st.sampled_from(["replace", "replace", "add", "delete"]))
    path = draw(st.sampled_from(key_paths(data)))
    parent, key = get(data, path[:-1]), path[-1]
    if kind == "replace":
        parent[key] = draw(BAD_VALUES)
    elif kind == "add":
        dicts = [()] + [p for p in key_paths(data) if isinstance(get(data, p), dict)]
        path = (*draw(st.sampled_from(dicts)), "zz" + draw(SAFE_KEY))
        get(data, path[:-1])[path[-1]] = draw(BAD_VALUES | st.just(1))
    elif isinstance(parent, dict):
        del parent[key]
    else:
        parent.pop(key)
    return data, kind, path


def write(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    return path


# --- study files --------------------------------------------------------------------------------


@FUZZ
@given(case=mutated())
def test_mutated_studies_end_in_one_line_per_problem(tmp_path_factory, case) -> None:
    data, kind, path = case
    file = write(tmp_path_factory.mktemp("fuzz"), "study.yaml", yaml.safe_dump(data))
    lines = check_study_file(file)
    if lines and kind in ("replace", "add"):
        # The key it touched, or the section holding it (a list of the wrong length, a study
        # whose other sections the new value contradicts), is named.
        named = {dotted(path[:n]) for n in range(min(2, len(path)), len(path) + 1)}
        assert any(n in line for line in lines for n in named), (path, lines)


@FUZZ
@given(key=st.text(max_size=12), at=st.integers(0, 5), value=BAD_VALUES)
def test_any_key_text_is_one_line(tmp_path_factory, key: str, at: int, value: Any) -> None:
    """Keys with tabs, newlines, quotes or nothing at all, in a section, a free-form ``params``,
    the search space or a searched parameter: a message never breaks across lines."""
    data = yaml.safe_load(yaml.safe_dump(SEEDS["smoke"]))
    space, baseline = data["search"]["space"], data["farm"]["baselines"][1]
    node = [data, data["train"], space, space["adversarial.alpha"], baseline, baseline["params"]]
    node[at][key] = value
    check_study_file(write(tmp_path_factory.mktemp("fuzz"), "study.yaml", yaml.safe_dump(data)))


SMOKE_TEXT = (ROOT / "studies" / "smoke.yaml").read_text()
BREAKERS = ["[", "]", "{", "}", "\t", ":", ": ", "- ", "&a ", "*a", "*nope", "!!binary ", "'", '"',
            "!!python/object:os.system ", "\x00", "\x1b", "\ufeff", "%YAML 9.9\n", "---\n", "\n  ",
            "? ", "|", ">", "#", "2024-13-45", "9" * 5000, "\udcff"]  # fmt: skip


@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, len(SMOKE_TEXT)), st.sampled_from(BREAKERS) |
                               st.text(max_size=3)), min_size=1, max_size=3),
       truncate=st.none() | st.integers(0, len(SMOKE_TEXT)),
       binary=st.binary(max_size=16))  # fmt: skip
def test_malformed_yaml_is_one_line(tmp_path_factory, cuts, truncate, binary: bytes) -> None:
    text = SMOKE_TEXT[:truncate]
    for at, breaker in sorted(cuts, reverse=True):
        text = text[:at] + breaker + text[at:]
    tmp = tmp_path_factory.mktemp("fuzz")
    check_study_file(write(tmp, "study.yaml", text))
    check_study_file(write(tmp, "binary.yaml", text.encode("utf-8", "surrogatepass") + binary))


LAUGHS = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"] + [
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]  # fmt: skip
BOMBS = {  # encoder.params of a study: (YAML lines, what the one error line says)
    "billion-laughs": (LAUGHS, f"encoder.params.l5: more than {MAX_VALUES} values once its "
                       "aliases (*name) are expanded"),
    "self-alias": (["me: &me [x, *me]"], "encoder.params.me[1][1][1]"),
    "deep-through-aliases": (["a: &a " + "[" * 20 + "x" + "]" * 20,
                             "b: " + "[" * 20 + "*a" + "]" * 20], "encoder.params.b[0][0]"),
}  # fmt: skip


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_an_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path, bomb: str) -> None:
    """Ten levels of nine aliases (9**10 values once expanded: the safe loader shares them, but
    privar's walks would not), an alias inside itself, nesting made deep by aliases: refused in
    one line naming the key, quickly and in little memory."""
    lines, needle = BOMBS[bomb]
    text = "name: bomb\nencoder:\n  name: bdq\n  params:\n" + "".join(
        f"    {line}\n" for line in lines)  # fmt: skip
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        (line,) = check_study_file(write(tmp_path, "bomb.yaml", text))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - t0 < 20 and peak < 64 * 2**20, (time.monotonic() - t0, peak)
    assert f"bomb.yaml: {needle}" in line, line
    assert needle.endswith("expanded") or line.endswith(f": nested deeper than {MAX_DEPTH} levels")


# --- --set --------------------------------------------------------------------------------------

SETS = st.one_of(
    st.sampled_from(["a.b=", "=x", "x", "=", "data.size=[1", "data.size={", "train.lr=.nan",
                     "train.lr=.inf", "train.epochs=1e308", "seed=-1", "seed=4294967296",
                     "train.epochs=99999999999999999999999", "dätä.größe=1", "name=",
                     "name=a\tb", "data.size=[0, 8]", "encoder.name=os.system",
                     "encoder.name=__import__('os').system('true')",
                     "encoder.params=!!python/object/apply:os.system [true]", ".=1", "..=1",
                     "search.space.x={type: int, low: 0.5, high: 2}", "train=1", "a" * 20000 + "=1",
                     "train.lr=" + "[" * 5000, "data.size=" + "9" * 5000, "data.options.x.y=1"]),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(
        ["train.lr", "train.epochs", "data.size", "seed", "name", "search.num_trials",
         "farm.adversaries", "encoder.params.levels", "adversarial.alpha", "data.options.x"]),
        st.sampled_from(["", "null", "-1", "0", ".nan", "-.inf", "1e308", "[]", "{}", "x",
                         "[[[1]]]", "9" * 40, "&a [*a]", "'", "\x00"]) | st.text(max_size=6)),
    st.text(max_size=30),
)  # fmt: skip


@FUZZ
@given(sets=st.lists(SETS, min_size=1, max_size=3))
def test_set_strings_end_in_one_line(sets: list[str]) -> None:
    check_study_file(ROOT / "studies" / "smoke.yaml", *sets)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--set", "data.size=[1"], "--set data.size: line 1: not valid YAML"),
        (["--set", "train.lr=.nan"], "--set: train.lr: expected a finite number, got nan"),
        (["--set", "x"], "--set 'x': expected key=value"),
        (["--set", "seed=-1"], "--set: seed: must be between 0 and 2**32 - 1"),
        (["--set", "a\nb=1"], "--set: 'a\\nb': unknown key"),
    ],
)
def test_set_mistakes_name_the_key(argv: list[str], needle: str) -> None:
    (line,) = check_study_file(ROOT / "studies" / "smoke.yaml", *argv[1::2])
    assert needle in line, line


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: s\ntrain: {lr: .nan}\n", "s.yaml: train.lr: expected a finite number, got nan"),
        ("name: s\nadversarial: {alpha: -.inf}\n", "adversarial.alpha: expected a finite number"),
        ("name: s\ntrain: {epochs: 99999999999999999999}\n", "train.epochs: 9999"),
        ("name: s\ntrain: {lr: " + "9" * 400 + "}\n", "train.lr: 999"),
        ("name: s\nencoder: {name: bdq, params: {levels: .nan}}\n", "encoder.params.levels: "),
        ("name: s\nseed: 4294967296\n", "s.yaml: seed: must be between 0 and 2**32 - 1"),
        ("name: 2024-13-45\n", "s.yaml: not valid YAML (month must be in 1..12)"),
        ("name: s\ndata: {size: [" + "9" * 5000 + ", 1]}\n", "s.yaml: not valid YAML (Exceeds"),
        ("name: s\n\tdata: {}\n", "s.yaml: line 2: not valid YAML"),
        ("name: s\x00\n", "s.yaml: not valid YAML (special characters are not allowed)"),
        ("name: s\nx: " + "[" * 1100 + "]" * 1100 + "\n", "s.yaml: nested deeper than 32"),
        ('name: s\ndata: {"a\\nb": 1}\n', "s.yaml: data.'a\\nb': unknown key"),
        ("name: s\nsearch: {space: {1: {type: int, low: 1, high: 2}}}\n",
         "s.yaml: search.space.1: a key must be text, got int"),
        ("name: !!python/object/apply:os.system [true]\n", "s.yaml: line 1: not valid YAML "
         "(could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply"),
    ],
)  # fmt: skip
def test_file_mistakes_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    lines = check_study_file(write(tmp_path, "s.yaml", text))
    assert len(lines) == 1 and needle in lines[0], lines


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    t0 = time.monotonic()
    (line,) = check_study_file(write(tmp_path, "s.yaml", "name: s\nx: [" + "1, " * 10**6 + "1]"))
    assert line.endswith(f"s.yaml: larger than {MAX_BYTES // 2**10} KiB; a study file is a few KiB")
    assert time.monotonic() - t0 < 10  # parsing it would take PyYAML about half a minute


def test_binary_file_is_one_line(tmp_path: Path) -> None:
    (line,) = check_study_file(write(tmp_path, "s.yaml", b"name: s\n\xff\xfe\x00\x81"))
    assert f"{tmp_path / 's.yaml'}: not valid YAML" in line


def test_the_console_command_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    """The installed `privar` script, as a user runs it: the same line, exit code 2 (test_cli.py
    runs `privar run` so with a bad --set)."""
    study = write(tmp_path, "s.yaml", "name: s\ntrain: {lr: .nan}\n")
    p = subprocess.run([str(Path(sys.executable).parent / "privar"), "validate", str(study)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.splitlines() == [f"privar: error: {study}: train.lr: expected a finite number, "
                                     "got nan"]  # fmt: skip
