"""The ``synthetic`` adapter: privar's generated action set (:mod:`privar.data.synthetic`).

``root/manifest.csv`` is read when it is there; otherwise the set is generated into ``root``
first (a missing or empty folder), so a study can name the synthetic set without a separate
``privar data synth`` step. A set an older generator made (its ``spec.json`` says another
``version``) is regenerated in place: its labels and files would differ from what this privar
measures. Options are :class:`~privar.data.synthetic.SynthSpec` fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from privar.data.adapters import ADAPTERS
from privar.data.manifest import VideoRecord, read_manifest
from privar.data.synthetic import VERSION, SynthSpec, read_spec, write_synthetic
from privar.errors import UserError


@ADAPTERS.register("synthetic", creates_root=True, options=SynthSpec)
def scan(root: Path, **spec_options) -> list[VideoRecord]:
    """Records of the synthetic set in ``root``, generated with ``SynthSpec(**spec_options)``
    when ``root`` holds no manifest yet. An existing set must agree with the options given."""
    known = {f.name for f in fields(SynthSpec)}
    unknown = sorted(set(spec_options) - known)
    if unknown:
        raise UserError(
            f"synthetic: unknown option(s) {', '.join(unknown)}; known: {sorted(known)}"
        )
    manifest = root / "manifest.csv"
    if manifest.is_file() and _version(root) != VERSION:
        print(f"{root}: synthetic set version {_version(root)}; generating version {VERSION}",
              flush=True)  # fmt: skip
        write_synthetic(root, SynthSpec(**spec_options), overwrite=True)
    elif not manifest.is_file():
        write_synthetic(root, SynthSpec(**spec_options))
    elif spec_options and (root / "spec.json").is_file():
        # Never hand back a set made differently from what the study asks for.
        have = asdict(read_spec(root / "spec.json"))
        spec_options = {k: v for k, v in spec_options.items() if k != "version"}
        differ = {k: (have[k], v) for k, v in spec_options.items() if have[k] != v}
        if differ:
            told = ", ".join(f"{k}={v!r} (the set has {h!r})" for k, (h, v) in differ.items())
            raise UserError(
                f"{root}: holds a synthetic set made with other options: {told}; "
                "delete it or point the study at another root"
            )
    return read_manifest(manifest)


def _version(root: Path) -> int:
    """The generator version of the set in ``root`` (1: made before sets recorded one). A
    folder without ``spec.json`` was not made by privar's generator and is read as it is."""
    spec = root / "spec.json"
    return json.loads(spec.read_text()).get("version", 1) if spec.is_file() else VERSION
