"""`lethe forget`: file a forget request, run it, publish the result; `lethe requests ...`."""

from __future__ import annotations

import json as jsonlib
from dataclasses import replace

import typer

from lethe.cli.app import JsonOption, app, console, emit, plural, workspace
from lethe.cli.progress import progress_callback
from lethe.errors import InputError, Where
from lethe.forget.mentions import read_choices
from lethe.ledger.states import RequestStatus
from lethe.train.distributed import main_driven

requests_app = typer.Typer(help="Forget requests: list, show, publish or discard a candidate.", no_args_is_help=True)
app.add_typer(requests_app, name="requests")


def parse_settings(params: list[str]) -> dict:
    """`key=value` pairs; values are read as JSON when they parse (numbers, booleans), else text."""
    out = {}
    for item in params:
        if "=" not in item:
            raise InputError(f"--param {item!r} is not key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = jsonlib.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@app.command()
@main_driven  # under `accelerate launch` the other processes take part in the unlearning only
def forget(
    docs: list[str] = typer.Option(None, "--docs", help="Document ids or keys (repeat, or comma-separate)."),
    collection: str = typer.Option(None, "--collection", help="Forget every document of a collection."),
    search: str = typer.Option(None, "--search", help="Forget every document whose title or content has this text."),
    method: str = typer.Option(
        "exact", "--method", "-m", help="Unlearning method (see `lethe requests methods`), or auto (the best tuned)."
    ),
    tuned: bool = typer.Option(False, "--tuned", help="Use the settings `lethe tune` chose for this method."),
    budget: float = typer.Option(None, "--budget", help="With --method auto: seconds the method may take."),
    reason: str = typer.Option(None, "--reason", help="Why (recorded with the request and the tombstones)."),
    requester: str = typer.Option(None, "--requester", help="Who asked."),
    version: str = typer.Option("latest", "--version", help="The version to unlearn from."),
    lora: bool = typer.Option(False, "--lora", help="Train a LoRA adapter and merge it on publish."),
    steps: int = typer.Option(None, "--steps", help="Optimizer steps (approximate methods)."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (approximate methods)."),
    param: list[str] = typer.Option(None, "--param", "-p", help="Method setting key=value, e.g. -p beta=0.1."),
    retokenize: bool = typer.Option(
        False,
        "--retokenize",
        help="Exact replay only: also retrain the tokenizer "
        "without the documents, and replay every slice from scratch with it.",
    ),
    holdout: str = typer.Option(None, "--holdout", help="Collection of never-trained documents for the audit."),
    no_publish: bool = typer.Option(False, "--no-publish", help="Keep the result as a candidate to inspect first."),
    purge: bool = typer.Option(False, "--purge", help="Delete the weights of versions that saw the documents."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Resolve the selector and show what would be forgotten."),
    mentions: str = typer.Option(
        None,
        "--mentions",
        help="Other documents naming the subject: redact (a new revision without the names), drop "
        "(forget them too) or keep. Default: redact with --search, else keep.",
    ),
    mention_choices: str = typer.Option(
        None, "--mention-choices", help='JSON file {"<doc id or key>": "redact" | "drop" | "keep", ...}.'
    ),
    write_choices: str = typer.Option(
        None,
        "--write-choices",
        help="With --dry-run: write each mention's decision to this JSON file, to edit and pass to --mention-choices.",
    ),
    json: bool = JsonOption,
) -> None:
    """Forget documents: unlearn them with a method, publish a new version, erase their content."""
    from lethe.forget import Selector, create_request, run_request

    ws = workspace()
    doc_refs = [d.strip() for item in (docs or []) for d in item.split(",") if d.strip()]
    selector = Selector(docs=doc_refs, collection=collection, search=search)
    config = parse_settings(param or [])
    if lora:
        config["lora"] = True
    if steps is not None:
        config["steps"] = steps
    if lr is not None:
        config["lr"] = lr
    if retokenize:
        config["retokenize"] = True
    from lethe.forget.tuning import resolve_tuned

    method, config, tuned_note = resolve_tuned(ws.ledger, version, method, config, tuned=tuned, budget=budget)
    if tuned_note and not json:
        console.print(f"method {method}: {tuned_note}", highlight=False)
    choices = read_choices(mention_choices) if mention_choices else None
    if write_choices and not dry_run:
        raise InputError("--write-choices goes with --dry-run", Where(field="write-choices"))
    if dry_run:
        _dry_run(ws, selector, version, mentions, choices, json, write_choices)
        return
    request_id = create_request(
        ws,
        selector,
        method=method,
        config=config,
        reason=reason,
        requester=requester,
        version=version,
        holdout=holdout,
        mentions=mentions,
        mention_choices=choices,
    )
    pairs = ws.ledger.forget_request_documents(request_id)
    untrained = [d for d, t in pairs if not t]
    if not json:
        console.print(
            f"Forget request [bold]{request_id}[/]: {plural(len(pairs), 'document')} "
            f"({len(pairs) - len(untrained)} trained, {len(untrained)} never trained), method {method}"
        )
        if untrained:
            console.print(f"  never trained by this lineage (erased only): {untrained[:20]}")
    with progress_callback(not json) as callback:
        outcome = run_request(ws, request_id, publish=not no_publish, purge=purge, callback=callback)
    if json:
        emit(outcome.as_dict(), True)
        return
    console.print(
        f"Request {request_id} {outcome.status} in {outcome.seconds:.1f}s"
        + (f": new version [bold]{outcome.version}[/]" if outcome.version else "")
    )
    if outcome.tainted:
        console.print(f"  tainted (serving needs --allow-tainted): {', '.join(outcome.tainted)}")
    if outcome.tokenizer:
        from lethe.eval.audit_render import describe_tokenizer_leak  # torch: only when there is a result

        console.print(f"  tokenizer: {describe_tokenizer_leak(outcome.tokenizer)}", highlight=False)
    if outcome.purged:
        console.print(f"  purged weights: {', '.join(outcome.purged)}")
    if outcome.status == RequestStatus.EVALUATED:
        console.print(
            f"  inspect with `lethe audit {request_id}`, then `lethe requests publish {request_id}` "
            f"or `lethe requests discard {request_id}`"
        )


def _dry_run(
    ws, selector, version: str, mentions: str | None, choices: dict | None, as_json: bool, write_choices: str | None
) -> None:
    """What a request would forget: its documents, the mentions and the conversations quoting them;
    with `write_choices`, each mention's decision as a `--mention-choices` file to edit."""
    from lethe.forget import resolve
    from lethe.forget.erasure import conversations_quoting, forgotten_strings, subjects_of
    from lethe.forget.mentions import mentions_for_request

    ledger = ws.ledger
    ids = resolve(ledger, selector)
    has_model = version != "latest" or "latest" in ledger.aliases()
    base = ledger.resolve_version(version, allow_tainted=True) if has_model else None
    named = resolve(ledger, replace(selector, search=None)) if selector.docs or selector.collection else []
    found, ids, _names = mentions_for_request(
        ledger, ids, search=selector.search, named=named, mode=mentions, choices=choices, apply=False
    )
    trained = ledger.documents_seen(base.id, candidates=ids) if base else []
    with ledger.reading() as s:
        strings = forgotten_strings(s, ids, subjects=subjects_of(selector.as_dict()))
        quoting = conversations_quoting(s, strings)
    result = {
        "documents": ids,
        "trained_by": base.name if base else None,
        "trained": trained,
        "mentions": [m.as_dict() for m in found],
        "conversations": [c.as_dict() for c in quoting],
    }
    if write_choices:
        _write_choices(write_choices, found, choices or {})
    if as_json:
        emit(result, True)
        return
    by = base.name if base else "no model"
    console.print(f"would forget {plural(len(ids), 'document')} ({len(trained)} trained by {by}):")
    trained_set = set(trained)
    for d in ledger.documents(ids):
        mark = f"trained by {by}" if d.id in trained_set else "never trained"
        console.print(f"  {d.id:>6}  {d.key}  {(d.title or '')[:60]!r}  ({mark})", highlight=False)
    for m in found:
        console.print(
            f"  mention in {m.key} (document {m.document_id}, {'/'.join(m.fields)}): {m.decision}", highlight=False
        )
    for c in quoting:
        console.print(
            f"  conversation {c.id} quotes them ({len(c.messages)} messages" + (", title" if c.title else "") + ")"
        )
    if write_choices:
        console.print(
            f"wrote {plural(len(found), 'mention')} to {write_choices}: change a decision to redact, drop or keep "
            f"(with a reason), then pass it with --mention-choices",
            highlight=False,
        )


def _write_choices(path: str, found, given: dict) -> None:
    """`{key: {"decision": ..., "reason": ..., "names": [...]}}` for every mention, by document key
    (a reason only where a choices file gave one: a default needs none)."""
    from pathlib import Path

    def reason(m):
        return (given.get(m.key) or given.get(str(m.document_id)) or {}).get("reason")

    entries = {m.key: {"decision": m.decision, "reason": reason(m), "names": m.names} for m in found}
    try:
        Path(path).write_text(jsonlib.dumps(entries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write the mention choices: {error.strerror}", Where(path=path)) from None


@requests_app.command("ls")
def requests_ls(json: bool = JsonOption) -> None:
    """List forget requests, newest first."""
    ledger = workspace().ledger
    versions = {v.id: v.name for v in ledger.list_versions(include_discarded=True)}
    rows = [
        {
            "id": r.id,
            "status": r.status,
            "method": r.method,
            "reason": r.reason,
            "base": versions.get(r.base_version_id),
            "result": versions.get(r.result_version_id),
            "created": r.created_at,
            "error": r.error,
        }
        for r in ledger.forget_requests()
    ]
    emit(rows, json, rows=rows, title="forget requests")


@requests_app.command("show")
def requests_show(request_id: int) -> None:
    """One request as JSON: selector, documents, status, audit."""
    ledger = workspace().ledger
    request = ledger.forget_request(request_id)
    result = {
        **{c.name: getattr(request, c.key) for c in request.__table__.columns},
        "documents": [{"id": d, "trained": t} for d, t in ledger.forget_request_documents(request_id)],
    }
    emit(result, True)


@requests_app.command("publish")
def requests_publish(
    request_id: int,
    purge: bool = typer.Option(False, "--purge", help="Delete the weights of versions that saw the documents."),
    rebase: bool = typer.Option(
        False,
        "--rebase",
        help="If `latest` moved since the candidate was made, re-apply the request to `latest` and publish that.",
    ),
    json: bool = JsonOption,
) -> None:
    """Publish an evaluated request's candidate: taint, erase, move `latest`."""
    from lethe.forget import publish_request, rebase_request
    from lethe.forget.requests import is_current

    ws = workspace()
    if rebase and not is_current(ws.ledger, ws.ledger.forget_request(request_id)):
        with progress_callback(not json) as callback:
            outcome = rebase_request(ws, request_id, purge=purge, callback=callback)
        if not json:
            console.print(f"request {request_id} re-applied to `latest` as request {outcome.request_id}")
    else:
        outcome = publish_request(ws, request_id, purge=purge)
    if json:
        emit(outcome.as_dict(), True)
    else:
        console.print(f"published {outcome.version}; tainted {', '.join(outcome.tainted) or 'nothing'}")


@requests_app.command("discard")
def requests_discard(request_id: int) -> None:
    """Discard an evaluated request's candidate (or a request whose process died); nothing is erased."""
    from lethe.forget import discard_request
    from lethe.forget.recovery import discard_dead_request

    ws = workspace()
    if ws.ledger.forget_request(request_id).status == RequestStatus.RUNNING:
        discard_dead_request(ws, request_id)
    else:
        discard_request(ws, request_id)
    console.print(f"request {request_id} discarded")


@requests_app.command("resume")
def requests_resume(
    request_id: int,
    no_publish: bool = typer.Option(False, "--no-publish", help="Keep the result as a candidate to inspect first."),
    purge: bool = typer.Option(False, "--purge", help="Delete the weights of versions that saw the documents."),
    json: bool = JsonOption,
) -> None:
    """Run again a request whose process died (or that failed), with its recorded method and settings."""
    from lethe.forget.recovery import resume_request

    with progress_callback(not json) as callback:
        outcome = resume_request(workspace(), request_id, publish=not no_publish, purge=purge, callback=callback)
    if json:
        emit(outcome.as_dict(), True)
    else:
        console.print(
            f"Request {request_id} {outcome.status}"
            + (f": version [bold]{outcome.version}[/]" if outcome.version else "")
        )


@requests_app.command("methods")
def requests_methods(json: bool = JsonOption) -> None:
    """The methods a forget request can use: exact replay and the approximate unlearning methods."""
    from lethe.forget import list_strategies

    names = list_strategies()
    if json:
        emit(names, True)
    else:
        console.print(", ".join(names))


@requests_app.command("receipt")
def requests_receipt(
    request_id: int,
    out: str = typer.Option(None, "--out", help="Directory for receipt-N.json and receipt-N.html (default reports/)."),
    json: bool = JsonOption,
) -> None:
    """Write the signed receipt of a finished request: what was found where, what was done, what remains."""
    from lethe.forget.receipt import write_receipt

    json_path, html_path = write_receipt(workspace(), request_id, out)
    if json:
        emit({"json": str(json_path), "html": str(html_path)}, True)
    else:
        console.print(f"receipt written: {json_path} and {html_path}", highlight=False)


@requests_app.command("verify-receipt")
def requests_verify_receipt(path: str, json: bool = JsonOption) -> None:
    """Check a receipt's Ed25519 signature, and that the ledger still agrees with it (exit 1 if not)."""
    from lethe.forget.receipt import verify_receipt

    problems = verify_receipt(workspace(), path)
    if json:
        emit({"valid": not problems, "problems": problems}, True)
    elif problems:
        for problem in problems:
            console.print(f"[red]✗[/] {problem}")
    else:
        console.print("receipt verified: the signature holds and the ledger agrees")
    if problems:
        raise typer.Exit(1)
