"""codecbench: benchmark image codecs, classical and learned, with one metric engine.

The public API for plugin authors: :class:`Codec`, :class:`Metric` (with its :class:`Column`), :class:`Dataset` and
``hookimpl``. See the README's "Write your own codec plugin" section.
"""

from codecbench.codec import Codec, Point
from codecbench.dataset import Dataset, FolderDataset, ImageRef, ManifestDataset, default_data_dir
from codecbench.errors import (
    BitstreamError,
    CodecbenchError,
    CodecError,
    CodecUnavailableError,
    DatasetError,
    ImageError,
    MetricError,
)
from codecbench.hookspecs import hookimpl
from codecbench.metric import Column, Metric

__all__ = [
    "BitstreamError",
    "Codec",
    "Column",
    "CodecError",
    "CodecUnavailableError",
    "CodecbenchError",
    "Dataset",
    "DatasetError",
    "FolderDataset",
    "ImageError",
    "ImageRef",
    "ManifestDataset",
    "Metric",
    "MetricError",
    "Point",
    "default_data_dir",
    "hookimpl",
]
