"""``codecbench fit-ot``: latents in, a map artefact with diagnostics out, resumable."""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

from codecbench.cli import cli
from codecbench_otgan.artefact import load_map

ARGS = ["--samples", "2000", "--rel-tol", "0.01", "--lr", "0.05", "--save-every", "2", "-q"]


def latents_file(path: Path) -> Path:
    codes = torch.rand(10, 3, generator=torch.Generator().manual_seed(0))
    torch.save(torch.cat([codes, codes[:2]]), path)  # two codes appear twice
    return path


def fit(out: Path, latents: Path, steps: int) -> str:
    result = CliRunner().invoke(cli, ["fit-ot", "--latents", str(latents), "--out", str(out),
                                      "--steps", str(steps), *ARGS])
    assert result.exit_code == 0, result.output
    return result.output


def test_fit_ot_writes_the_map_diagnostics_and_plot(tmp_path: Path) -> None:
    output = fit(tmp_path / "fit", latents_file(tmp_path / "z.pt"), 6)
    assert "12 codes, 10 distinct targets of dimension 3" in output
    assert "check on 1000000 fresh samples: max relative cell-measure error" in output
    ot_map, shape, payload = load_map(tmp_path / "fit" / "ot_map.pt")
    assert ot_map.targets.shape == (10, 3) and shape == (3,)
    assert sorted(payload["weights"].tolist())[-2:] == [2 / 12, 2 / 12]
    assert len(payload["history"]) == 6
    assert {"energy", "max_rel_error", "empty_share"} <= set(payload["history"][0])
    assert (tmp_path / "fit" / "diagnostics.png").stat().st_size > 0
    assert payload["verification"]["samples"] == 1_000_000
    assert 0 <= payload["verification"]["max_rel_error"] < payload["history"][0]["max_rel_error"]


def test_fit_ot_resumes_where_it_stopped(tmp_path: Path) -> None:
    latents = latents_file(tmp_path / "z.pt")
    fit(tmp_path / "once", latents, 8)
    fit(tmp_path / "twice", latents, 3)
    fit(tmp_path / "twice", latents, 8)
    once, _, once_payload = load_map(tmp_path / "once" / "ot_map.pt")
    twice, _, twice_payload = load_map(tmp_path / "twice" / "ot_map.pt")
    assert torch.equal(once.h, twice.h)
    def measured(payload: dict) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in payload["history"]]

    assert measured(once_payload) == measured(twice_payload)


def test_fit_ot_refuses_changed_settings_and_missing_inputs(tmp_path: Path) -> None:
    latents = latents_file(tmp_path / "z.pt")
    fit(tmp_path / "fit", latents, 2)
    result = CliRunner().invoke(cli, ["fit-ot", "--latents", str(latents), "--out", str(tmp_path / "fit"),
                                      "--lr", "0.5", "-q"])
    assert result.exit_code == 1 and "settings changed" in result.output
    result = CliRunner().invoke(cli, ["fit-ot", "--out", str(tmp_path / "none"), "-q"])
    assert result.exit_code == 1 and "--latents" in result.output
