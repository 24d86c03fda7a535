"""The checkpoint files that coded a stored curve, found again for decoding, or named exactly.

A row of a codec configured with ``weights`` (a user's own checkpoints) records each file's
absolute path and sha256 (:meth:`~codecbench.results.ResultStore.weights_files`). To decode such a
row, each file is looked for by its sha256 among the files the user passes (``report --weights``),
at its recorded absolute path and at the path as it was given (relative to the working folder). A
file found nowhere makes :class:`MissingCheckpointError` name it: path, sha256 and what is there now.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from codecbench.errors import CodecUnavailableError
from codecbench.files import cached_sha256

__all__ = ["Checkpoints", "MissingCheckpointError"]


class MissingCheckpointError(CodecUnavailableError):
    """A checkpoint that coded stored rows cannot be found here (by its sha256)."""


def _digest(path: Path) -> str | None:
    try:
        return cached_sha256(path) if path.is_file() else None
    except OSError:
        return None


class Checkpoints:
    """The recorded checkpoint files of each curve and where they are now.

    ``recorded``: :meth:`~codecbench.results.ResultStore.weights_files` of the dataset;
    ``candidates``: files the user passed that may hold the checkpoints (any order).
    """

    def __init__(self, recorded: pd.DataFrame, candidates: Sequence[Path] = ()):
        self.recorded = recorded
        self.candidates = [Path(p).expanduser() for p in candidates]

    def options(self, codec: str, version: str, config: str) -> dict[str, object]:
        """The codec options that decode the curve (codec, version, config): its stored ones with
        ``weights`` pointing at the files found by sha256; raises :class:`MissingCheckpointError`
        naming every file found nowhere."""
        options = json.loads(config) if config else {}
        mine = self.recorded[(self.recorded["codec"] == codec) & (self.recorded["codec_version"] == version)
                             & (self.recorded["config"] == config)] if not self.recorded.empty else self.recorded
        if mine.empty or "weights" not in options:
            return options
        given = [p.strip() for p in str(options["weights"]).split(",") if p.strip()]
        found, missing = [], []
        for entry in mine.sort_values("position").itertuples():
            if entry.sha256 is None or pd.isna(entry.sha256):  # unreadable when stored: as recorded
                found.append(entry.path)
                continue
            places = [*self.candidates, Path(entry.path)]
            if entry.position < len(given):
                places.append(Path(given[entry.position]).expanduser())
            match = next((p for p in places if _digest(p) == entry.sha256), None)
            if match is not None:
                found.append(str(match))
            else:
                missing.append(self._describe(entry.path, entry.sha256))
        if missing:
            raise MissingCheckpointError(
                f"{codec} rows were coded with {'; '.join(missing)}: pass the file with "
                "`codecbench report --weights FILE`")
        return {**options, "weights": ",".join(found)}

    def _describe(self, path: str, sha256: str) -> str:
        now = _digest(Path(path))
        there = ("not found there" if not Path(path).exists() else
                 f"the file there now has sha256 {now[:16]}..., another checkpoint" if now else
                 "the file there cannot be read")
        searched = f", nor among the {len(self.candidates)} file(s) given" if self.candidates else ""
        return f"checkpoint {path} (sha256 {sha256}; {there}{searched})"
