"""The toy learned codec as a module plugin, so that the report's guarded decoding workers register
it too (``registered_plugin(report_learned, ...)``)."""

from __future__ import annotations

from learned_toy import ToyLearnedCodec

from codecbench import hookimpl


@hookimpl
def register_codecs(register) -> None:
    register(ToyLearnedCodec())
