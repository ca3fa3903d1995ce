"""The ``sbu`` adapter: SBU Kinect Interaction (Yun et al., CVPRW 2012), as BDQ (Kumawat and
Nagahara, CVPR 2022) uses it after Wu et al.: the 8 interactions to recognise, the 13 actor pairs
to hide.

Layout: ``root/sXXsYY/AA/RRR/rgb_NNNNNN.png``: 21 set folders (actor XX acts, YY reacts), action
folders 01-08 in SBU's numbering (01 approaching, 02 departing, 03 kicking, 04 punching,
05 pushing, 06 hugging, 07 shakinghands, 08 exchanging), run folders 001, 002, ... holding the
RGB frames (the depth_*.png and skeleton_pos.txt beside them are ignored). A run may instead be a
video file ``AA/RRR.mp4`` or ``AA/RRR.avi``, used as it is (it wins over a run folder of the same
name). Frame folders are encoded once, at SBU's 15 fps, to ``convert_to/sXXsYY/AA/RRR.mp4``
(default ``root/_videos``) and the record points at that clip.

privacy = the unordered actor pair, lower id first: s02s01 folds into s01s02, so SBU's 21 sets
make 13 pairs.

Split, per video so that every pair is in every split: each pair's videos, ordered by
(action, set, run), are dealt out in turns of five: train, train, train, val, test. Every pair
of a full copy has at least 8 videos (one per action), so each lands in all three splits,
about 60/20/20.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from privar.data.adapters import ADAPTERS
from privar.data.adapters._convert import frames_to_mp4
from privar.data.manifest import VideoRecord
from privar.errors import UserError

ACTIONS = {
    "01": "approaching",
    "02": "departing",
    "03": "kicking",
    "04": "punching",
    "05": "pushing",
    "06": "hugging",
    "07": "shakinghands",
    "08": "exchanging",
}
FPS = 15
DEAL = ("train", "train", "train", "val", "test")
_SET = re.compile(r"s(\d\d)s(\d\d)")
_RUN = re.compile(r"(\d{3})(\.mp4|\.avi)?")


@ADAPTERS.register("sbu")
def scan(root: Path, convert_to: str | Path | None = None) -> list[VideoRecord]:
    """SBU runs under ``root``; frame folders become mp4 clips under ``convert_to``."""
    cache = Path(convert_to) if convert_to is not None else root / "_videos"
    by_pair: dict[str, list[tuple[str, str, str, Path]]] = defaultdict(list)
    for set_dir in sorted(root.iterdir()):
        m = _SET.fullmatch(set_dir.name)
        if m is None or not set_dir.is_dir():
            continue
        pair = "s{:02d}s{:02d}".format(*sorted(map(int, m.groups())))
        for action_dir in sorted(p for p in set_dir.iterdir() if p.name in ACTIONS):
            for run, source in sorted(_runs(action_dir).items()):
                by_pair[pair].append((action_dir.name, set_dir.name, run, source))
    if not by_pair:
        raise UserError(f"{root}: no SBU set folders (s01s02/01/001/...) here")
    records = []
    for pair, runs in sorted(by_pair.items()):
        for i, (action, set_name, run, source) in enumerate(sorted(runs)):
            if source.is_dir():
                out = cache / set_name / action / f"{run}.mp4"
                source = frames_to_mp4(source, out, FPS, pattern="rgb_*")
            records.append(VideoRecord(str(source), ACTIONS[action], pair, DEAL[i % len(DEAL)]))
    return records


def _runs(action_dir: Path) -> dict[str, Path]:
    """Run number -> its video file, else its frame folder."""
    runs: dict[str, Path] = {}
    for p in sorted(action_dir.iterdir()):
        m = _RUN.fullmatch(p.name)
        if m and (m[2] or p.is_dir()) and (m[1] not in runs or runs[m[1]].is_dir()):
            runs[m[1]] = p
    return runs
