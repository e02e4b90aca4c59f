"""`lethe data synth` and `lethe data curate`: make and clean training data."""

from __future__ import annotations

import typer

from lethe.cli.app import JsonOption, console, emit, workspace
from lethe.cli.data import data_app


@data_app.command("synth")
def synth(
    entities: int = typer.Option(100, "--entities", "-n", help="How many entities (people, places, organisations)."),
    seed: int = typer.Option(0, "--seed", help="The world is the same for the same seed."),
    holdout: float = typer.Option(0.1, "--holdout", help="Fraction of entities never trained (for audits)."),
    json: bool = JsonOption,
) -> None:
    """Generate the embedded default: a fictional world nobody can know before training."""
    from lethe.data.synth_ingest import ingest_synthetic_world

    world, report = ingest_synthetic_world(workspace().ledger, entities=entities, seed=seed, holdout_fraction=holdout)
    result = {"entities": len(world.entities), "documents": len(world.documents), **report.as_dict()}
    result["collections"] = {k: v for k, v in report.collections.items() if "/entity/" not in k}
    if json:
        emit(result, True)
        return
    console.print(
        f"Synthetic world (seed {seed}): {len(world.entities)} entities, {len(world.documents)} documents "
        f"— added {report.added}, updated {report.updated}, unchanged {report.unchanged}"
    )
    for name, n in result["collections"].items():
        console.print(f"  {name}: +{n}")


@data_app.command("curate")
def curate_cmd(
    collection: str = typer.Argument(..., help="The collection to curate."),
    out: str = typer.Option(None, "--out", help="Name of the curated collection (default COLLECTION/curated)."),
    threshold: float = typer.Option(
        0.8, "--near-duplicate", help="Jaccard similarity that counts as a near duplicate."
    ),
    json: bool = JsonOption,
) -> None:
    """Drop near-empty documents, exact and near duplicates; clean extractor artifacts."""
    from lethe.data.curate import CurationConfig
    from lethe.data.curate_collection import curate_collection

    report = curate_collection(
        workspace().ledger, collection, out=out, config=CurationConfig(near_duplicate_threshold=threshold)
    )
    if json:
        emit(report.as_dict(), True)
        return
    console.print(
        f"{report.collection}: kept {report.kept}, dropped {report.dropped}, cleaned {report.cleaned}, "
        f"flagged {report.flagged}"
    )
    for reason, n in sorted(report.reasons.items()):
        console.print(f"  {reason}: {n}")
