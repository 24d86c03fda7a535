"""What travels to a worker process: one unit of work, named by plugin registry names.

A worker looks each codec and metric up in its own plugin registry by name, configures it with the
options stored with the run (``codec.config``) and keeps it for the rest of its life, so a model is
loaded once per worker, not once per unit. A codec or metric that is not in the registry (one built
in a test or a notebook) travels as a pickled instance instead. Plugins registered in the calling
process at run time (``pm.register``, ``codecbench.plugins.registered_plugin``) are registered in
the worker too, so that its registry is the caller's: a module by name, any other plugin object
pickled; one that cannot travel is named in the error of a unit that needs it. Workers read the
images themselves, so only paths are sent. The metrics' weights folder travels in the task as a
value (``--weights-dir`` sets no environment variable for workers to inherit).

The in-process executor resolves the same tasks the same way (:func:`run_task`), so a unit is
computed by one code path wherever it runs.
"""

from __future__ import annotations

import importlib
import os
import pickle
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codecbench import plugins
from codecbench import threads as torch_threads
from codecbench.codec import Codec, Point
from codecbench.errors import CodecbenchError, UnknownNameError
from codecbench.metrics import Metric, using_weights_dir, weights_dir
from codecbench.results import config_json
from codecbench.unit import (
    UnitResult,
    cached_image,
    decode_checked,
    describe_error,
    execute_unit,
    measure_stream,
)


@dataclass(frozen=True)
class PluginRef:
    """A plugin registered in the calling process, to register in workers too: a module by name,
    any other object pickled, or (``error``) why it cannot be."""

    name: str
    module: str | None = None
    pickled: bytes | None = None
    error: str | None = None

    @classmethod
    def of(cls, name: str, plugin: object) -> "PluginRef":
        if isinstance(plugin, types.ModuleType):
            return cls(name, module=plugin.__name__)
        try:
            return cls(name, pickled=pickle.dumps(plugin))
        except Exception as exc:  # a class defined in a function, a lock or an open file held, ...
            return cls(name, error=f"it cannot be pickled ({type(exc).__name__}: {exc})")

    def load(self) -> object:
        """The plugin, in a worker: its module imported, or its object unpickled; a
        :class:`~codecbench.errors.CodecbenchError` naming the plugin when it cannot be."""
        try:
            if self.module is not None:
                return importlib.import_module(self.module)
            if self.pickled is not None:
                return pickle.loads(self.pickled)
            reason = self.error
        except Exception as exc:
            reason = f"it cannot be rebuilt there ({type(exc).__name__}: {exc})"
        raise CodecbenchError(
            f"plugin {self.name!r} cannot be registered in worker processes: {reason}. A plugin "
            "object must be picklable, its class defined at the top level of an importable module "
            "(not in a function or a notebook); or register a module")


@dataclass(frozen=True)
class CodecSpec:
    """A codec by registry name and configuration (or, outside the registry, by instance)."""

    name: str
    config: dict[str, Any]
    instance: Codec | None = None

    @classmethod
    def of(cls, codec: Codec) -> "CodecSpec":
        registered = plugins.codecs().items.get(codec.name)
        instance = None if type(registered) is type(codec) else codec
        return cls(codec.name, dict(codec.config), instance)

    def key(self) -> str:
        return f"{self.name} {config_json(self.config)}"


@dataclass(frozen=True)
class MetricSpec:
    """A metric by registry name (or, outside the registry, by instance)."""

    name: str
    instance: Metric | None = None

    @classmethod
    def of(cls, metric: Metric) -> "MetricSpec":
        registered = plugins.metrics().items.get(metric.name)
        return cls(metric.name, None if type(registered) is type(metric) else metric)


def _weights_dir_here() -> str | None:
    folder = weights_dir()
    return None if folder is None else str(folder)


@dataclass(frozen=True)
class UnitTask:
    """One codec point on one image; with ``stream`` set, only metrics from that stored stream."""

    index: int
    codec: CodecSpec
    point: Point
    image: str
    metrics: tuple[MetricSpec, ...]
    stream: bytes | None = None
    plugins: tuple[PluginRef, ...] = ()
    threads: int = 1  # torch's thread count in the worker (0: torch's default)
    weights_dir: str | None = field(default_factory=_weights_dir_here)
    """The metrics' weights folder in force where the task was made (``--weights-dir``, else
    ``$CODECBENCH_WEIGHTS``), used by the metrics wherever the task runs."""


@dataclass(frozen=True)
class DecodeTask:
    """A stored ``stream`` to decode into an image of ``shape`` (:func:`decode_task`)."""

    codec: CodecSpec
    stream: bytes
    shape: tuple[int, ...]
    plugins: tuple[PluginRef, ...] = ()
    threads: int = 1


@dataclass
class Outcome:
    """A finished task: its result and how many times it was started (crashes and timeouts retry)."""

    task: UnitTask
    result: UnitResult
    attempts: int = 1


@dataclass
class Resolver:
    """The codecs and metrics of tasks, each looked up and loaded once, then kept (a worker keeps
    one for its whole life; the in-process executor one per run)."""

    codecs: dict[str, Codec] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)

    def codec(self, spec: CodecSpec) -> Codec:
        key = spec.key()
        if key not in self.codecs:
            base = spec.instance or plugins.codecs().get(spec.name)
            codec = base.with_options(**spec.config) if spec.instance is None else base
            codec.load()
            self.codecs[key] = codec
            torch_threads.apply()
        return self.codecs[key]

    def metric(self, spec: MetricSpec) -> Metric:
        if spec.name not in self.metrics:
            self.metrics[spec.name] = spec.instance or plugins.metrics().get(spec.name)
        return self.metrics[spec.name]


_worker = Resolver()


def plugin_refs() -> tuple[PluginRef, ...]:
    """The plugins registered in this process, to be registered in workers as well: every module,
    and every other object not loaded from an entry point (workers load those themselves)."""
    pm = plugins.get_plugin_manager()
    return tuple(
        PluginRef.of(name, plugin)
        for name, plugin in pm.list_name_plugin()
        if isinstance(plugin, types.ModuleType)
        or (plugin is not None and not plugins.from_entry_point(name))
    )


def setup_worker(threads: int = 1) -> None:
    """``threads`` threads per worker for OpenMP/MKL/torch (default 1: the parallelism is across
    workers; ``0``: the libraries' defaults)."""
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
    torch_threads.request(threads)


def start_worker(threads: int = 1) -> None:
    """Pool initializer: :func:`setup_worker`, then load the installed plugins (importing them,
    torch included, takes seconds), so that no unit's timeout counts that start-up."""
    setup_worker(threads)
    try:
        plugins.codecs()
        plugins.metrics()
    except Exception:  # the first unit reports it, as a failed row with the error
        return
    torch_threads.apply()


_synced: dict[str, PluginRef] = {}  # the plugins this process registered from refs, by name


def sync_plugins(refs: tuple[PluginRef, ...], resolver: Resolver) -> list[str]:
    """Make this worker's run-time plugins the caller's, ``refs``: register those it lacks, and
    unregister those it registered from earlier refs that the caller no longer has or has changed
    (``resolver`` then forgets its codecs and metrics). Returns why plugins could not be
    registered; a lookup that fails names them (:func:`explained`). In the calling process every
    ref is registered already, and nothing changes."""
    pm = plugins.get_plugin_manager()
    wanted = {ref.name: ref for ref in refs}
    stale = [name for name, ref in _synced.items() if wanted.get(name) != ref]
    for name in stale:
        pm.unregister(name=name)
        del _synced[name]
    if stale:
        resolver.codecs.clear()
        resolver.metrics.clear()
    problems = []
    for ref in refs:
        if pm.get_plugin(ref.name) is None and not pm.is_blocked(ref.name):
            try:
                pm.register(ref.load(), name=ref.name)
            except Exception as exc:  # cannot travel, an import error, a hook matching no spec
                problems.append(f"{exc}" if isinstance(exc, CodecbenchError) else
                                f"plugin {ref.name!r} failed to load here: {describe_error(exc)}")
                continue
            _synced[ref.name] = ref
    return problems


@contextmanager
def explained(problems: list[str]) -> Iterator[None]:
    """An unknown codec or metric looked up in the block, explained by the plugins that could not
    be registered in this process (``problems``, from :func:`sync_plugins`)."""
    try:
        yield
    except UnknownNameError as exc:
        if not problems:
            raise
        raise CodecbenchError(f"{exc} {' '.join(problems)}") from exc


def run_task(task: UnitTask, resolver: Resolver) -> UnitResult:
    """Compute one task with the codec and metrics ``resolver`` gives. Never raises: failures are
    results, as in :func:`~codecbench.unit.execute_unit`."""
    try:
        problems = sync_plugins(task.plugins, resolver)
        image = cached_image(task.image)
        with explained(problems):
            codec = resolver.codec(task.codec)
            metrics = [resolver.metric(m) for m in task.metrics]
    except Exception as exc:
        return UnitResult("failed", error=describe_error(exc))
    with using_weights_dir(task.weights_dir):
        if task.stream is None:
            return execute_unit(codec, task.point, image, metrics)
        return measure_stream(codec, task.stream, image, metrics)


def execute_task(task: UnitTask) -> UnitResult:
    """Compute one task in a worker process (its entry point)."""
    setup_worker(task.threads)
    return run_task(task, _worker)


def decode_task(task: DecodeTask) -> np.ndarray:
    """Decode one stored stream in a worker process (its entry point); raises what the decoder
    raises, or :class:`~codecbench.errors.CodecError` for an image of the wrong shape."""
    setup_worker(task.threads)
    with explained(sync_plugins(task.plugins, _worker)):
        codec = _worker.codec(task.codec)
    torch_threads.apply()
    return decode_checked(codec, task.stream, task.shape)
