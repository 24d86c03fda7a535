"""``codecbench db``: look after the results store (``check``, ``backup``, ``prune``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from codecbench import plugins
from codecbench.cli.options import db_option
from codecbench.codec import format_point
from codecbench.errors import CodecbenchError
from codecbench.hookspecs import hookimpl
from codecbench.results import ResultStore, StoreCheck, default_db_path


@click.group("db")
def db_group() -> None:
    """Check, back up or prune the results database (check and backup work on a read-only store)."""


def existing_store(db: Path | None) -> Path:
    path = db or default_db_path()
    if not path.is_file():
        raise click.ClickException(f"No results database at {path}; pass --db or run "
                                   "`codecbench run` first.")
    return path


def check_record(report: StoreCheck) -> dict[str, object]:
    """``db check --format json``: what :meth:`ResultStore.check` found, as plain values."""
    return {
        "path": str(report.path), "ok": report.ok, "integrity": report.integrity,
        "counts": report.counts, "orphan_metric_values": report.orphan_metrics,
        "damaged_streams": [vars(k) for k in report.damaged],
        "rows_without_image_hash": report.unhashed_images,
        "claims": [{**vars(k), "pid": c.pid, "host": c.host, "claimed": c.claimed, "live": live}
                   for k, c, live in report.claims],
        "errors": report.errors,
    }


@db_group.command("check")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@db_option
def check_command(fmt: str, db: Path | None) -> None:
    """SQLite's integrity check, row counts, metric values without a row, bitstreams that no
    longer match their checksum, and the units claimed by runs (live or left by a dead process).

    Exits with status 1 when the store is damaged. A damaged stream's row is recomputed by the
    next `codecbench run` of its codec and dataset.
    """
    with ResultStore(existing_store(db), read_only=True) as store:
        report = store.check()
    if fmt == "json":
        click.echo(json.dumps(check_record(report), indent=2))
    else:
        click.echo(f"{report.path}: " + ("ok" if report.ok else "PROBLEMS FOUND"))
        click.echo(f"  integrity check: {report.integrity[0]}")
        for line in report.integrity[1:10]:
            click.echo(f"    {line}")
        if len(report.integrity) > 10:
            click.echo(f"    ... and {len(report.integrity) - 10} more")
        click.echo("  " + ", ".join(f"{n} {name}" for name, n in report.counts.items()))
        click.echo(f"  metric values without a row: {report.orphan_metrics}")
        click.echo(f"  damaged bitstreams: {len(report.damaged)}")
        for key in report.damaged:
            click.echo(f"    {key.dataset}  {key.image}  {key.codec} @ {format_point(key.point)}"
                       f"  (version {key.codec_version}, config {key.config})")
        if report.unhashed_images:
            click.echo(f"  rows without an image hash (older store; stamped by the next run): "
                       f"{report.unhashed_images}")
        if report.claims:
            live = sum(1 for *_, alive in report.claims if alive)
            click.echo(f"  claimed units: {live} by running runs, {len(report.claims) - live} left "
                       "by runs that are gone (taken over by the next run)")
        for error in report.errors:
            click.echo(f"  error: {error}")
    if not report.ok:
        raise SystemExit(1)


@db_group.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@db_option
def backup_command(dest: Path, db: Path | None) -> None:
    """Copy the results database to the new file DEST, consistently.

    Uses SQLite's backup API, so rows still in the write-ahead log (the -wal file beside the
    store) are included and a run writing meanwhile does no harm; copying the .sqlite file alone
    can lose rows or give a malformed database. DEST is one self-contained file, checked before it
    is moved into place; an existing DEST is never overwritten.
    """
    path = existing_store(db)
    with ResultStore(path, read_only=True) as store:
        written = store.backup(dest)
    size = written.stat().st_size / 1e6
    click.echo(f"Backed up {path} to {written} ({size:.1f} MB)")


def current_version(name: str) -> str:
    """The version the registered codec ``name`` reports now (its default configuration)."""
    try:
        codec = plugins.codecs().get(name)
        reason = codec.unavailable_reason()
        if reason:
            raise click.ClickException(f"{name} cannot run here, so it cannot say its current "
                                       f"version ({reason}); name the versions with --version.")
        return codec.version()
    except CodecbenchError as exc:
        raise click.ClickException(f"{exc}; without the codec installed, name the versions to "
                                   "remove with --version.") from exc


@db_group.command("prune")
@click.argument("codec")
@click.option("--version", "versions", multiple=True,
              help="Remove the rows of this codec version (repeatable; see `codecbench results "
                   "--format csv`'s codec_version column).")
@click.option("--stale", is_flag=True,
              help="Remove every version but the one the installed codec reports now in its "
                   "default configuration (e.g. the rows of a model since retrained or replaced; "
                   "rows coded with other weights files, -o weights=..., count as other versions).")
@click.option("--all-versions", is_flag=True, help="Remove all of the codec's rows.")
@click.option("--dataset", "-d", default=None, help="Only rows of this dataset (default: all).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@db_option
def prune_command(codec: str, versions: tuple[str, ...], stale: bool, all_versions: bool,
                  dataset: str | None, dry_run: bool, db: Path | None) -> None:
    """Delete CODEC's rows, with their metric values and bitstreams, in one transaction.

    Say which with exactly one of --version, --stale or --all-versions. Back the store up first
    (`codecbench db backup`) if the rows may be wanted again: a pruned row is recomputed only by
    running the codec version that made it.
    """
    if sum((bool(versions), stale, all_versions)) != 1:
        raise click.UsageError("Say which rows to remove with exactly one of --version, --stale "
                               "or --all-versions.")
    keep = current_version(codec) if stale else None
    with ResultStore(existing_store(db)) as store:
        counts = store.prune(codec, versions=versions, keep_version=keep, dataset=dataset,
                             dry_run=dry_run)
    verb = "Would remove" if dry_run else "Removed"
    if not counts:
        kept = f" (kept version {keep})" if keep else ""
        click.echo(f"No rows of {codec} to remove{kept}.")
        return
    for (ds, version), n in counts.items():
        click.echo(f"{verb} {n} rows of {codec} on {ds}, version {version}")
    if keep:
        click.echo(f"Kept version {keep}.")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(db_group)
