"""Hook specifications: the whole plugin surface of codecbench.

A plugin is a module (registered under the ``codecbench`` entry-point group) that implements any
of these hooks with ``@codecbench.hookimpl``. Built-in codecs, datasets and metrics use the same
hooks and the same entry-point group as third-party plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    import click

    from codecbench.codec import Codec
    from codecbench.dataset import Dataset
    from codecbench.metrics import Metric

hookspec = pluggy.HookspecMarker("codecbench")
hookimpl = pluggy.HookimplMarker("codecbench")


@hookspec
def register_codecs(register: Callable[[Codec], None]) -> None:
    """Register codecs by calling ``register(codec_instance)`` once per codec."""


@hookspec
def register_datasets(register: Callable[[Dataset], None]) -> None:
    """Register datasets by calling ``register(dataset_instance)`` once per dataset."""


@hookspec
def register_metrics(register: Callable[[Metric], None]) -> None:
    """Register metrics by calling ``register(metric_instance)`` once per metric."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``codecbench`` command-line group."""
