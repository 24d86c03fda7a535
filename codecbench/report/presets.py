"""Named sets of ``codecbench report`` options (``--preset NAME``); explicit options win."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Report options; ``None`` leaves the command's default."""

    description: str
    bpp: float | None = None
    codecs: tuple[str, ...] = ()
    anchor: str | None = None
    images: int | None = None
    crop: int | None = None
    zoom: int | None = None
    log_bpp: bool | None = None


PRESETS = {
    "paper": Preset(
        description="the OT+GAN paper's comparison: 0.03 bpp, BPG, HEVC-HEIF, JPEG 2000, AEDC, HiFiC, "
                    "gan, ot and ot_gan (those with stored results), log-bpp plots, BD-rates against "
                    "BPG (else HEVC-HEIF), a 128x128 crop of three Kodak images enlarged 3x",
        bpp=0.03,
        codecs=("bpg", "hevc-heif", "jpeg2000", "aedc", "hific", "gan", "ot", "ot_gan"),
        images=3, crop=128, zoom=3, log_bpp=True,
    ),
}
