"""The receipt of a finished forget request: what was found where, what was done, what remains,
signed with the workspace's Ed25519 key.

    receipt = build_receipt(workspace, request_id)       # a dict, from the ledger
    paths = write_receipt(workspace, request_id, out)    # receipt-N.json + receipt-N.html, signed
    problems = verify_receipt(workspace, "receipt-3.json")   # [] when signature and ledger agree

The JSON holds `receipt` (the facts) and `signature` (Ed25519 over the canonical JSON of
`receipt`: sorted keys, no spaces, UTF-8; the public key is included and must be the
workspace's). The key pair lives in `keys/receipt-ed25519.pem` (made on first use, mode 0600).
The HTML page shows the same facts and embeds the signed JSON. Nothing in a receipt quotes a
forgotten document: documents are given by key, revision and hashes, the selector and the
forgotten strings by digest.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select

from lethe.errors import ConflictError, InputError, Where
from lethe.ledger.schema import (
    Checkpoint,
    Collection,
    CollectionMember,
    Document,
    Event,
    Exposure,
    ModelVersion,
    Run,
    Slice,
    SliceDocument,
)

if TYPE_CHECKING:
    from lethe.workspace import Workspace

KEY_FILE = ("keys", "receipt-ed25519.pem")
FINISHED = ("succeeded",)
CHECKED = ("request", "documents", "versions", "weights")
"""The parts `verify_receipt` recomputes from the ledger and compares."""


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


# -- the key ------------------------------------------------------------------------------------


def signing_key(workspace: Workspace) -> Ed25519PrivateKey:
    """The workspace's receipt key, made on first use."""
    path = Path(workspace.home).joinpath(*KEY_FILE)
    if path.is_file():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise InputError("the receipt key is not an Ed25519 key", Where(path=path))
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def _public_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


# -- the facts ----------------------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _version_row(v) -> dict:
    return {
        "id": v.id,
        "name": v.name,
        "kind": v.kind,
        "status": v.status,
        "weights_sha256": v.weights_sha256,
        "tainted_at": _iso(v.tainted_at),
        "purged_at": _iso(v.purged_at),
    }


def _guard_statement(guard: dict | None) -> str | None:
    """What the name guard keeps (`lethe.forget.name_guard`), in a sentence; None without one."""
    if not guard:
        return None
    n = len(guard.get("digests", []))
    action = "redacts the names in" if guard.get("mode") == "redact" else "skips"
    return (
        f"{n} keyed digest{'s' if n != 1 else ''} (HMAC-SHA256) of the subject's names, not the names: "
        f"every later ingest {action} records that name the subject; the key is {guard.get('key')} in the workspace"
    )


def build_receipt(workspace: Workspace, request_id: int) -> dict:
    """Everything the ledger knows of a finished request, without a byte of its documents."""
    from lethe.forget.tokenizer_purge import tokenizer_status

    ledger = workspace.ledger
    request = ledger.forget_request(request_id)
    if request.status not in FINISHED:
        raise ConflictError(f"forget request {request_id} is {request.status}; receipts are for finished requests")
    pairs = dict(ledger.forget_request_documents(request_id))
    ids = sorted(pairs)
    audit = request.audit or {}
    erasure = audit.get("erasure") or {}
    with ledger.reading() as s:
        documents = [
            {
                "id": d.id,
                "key": d.key,
                "revision": d.revision,
                "content_hash": d.content_hash,
                "trained": pairs[d.id],
                "forgotten_at": _iso(d.forgotten_at),
                "hashes": {k: v for k, v in (d.tombstone or {}).items() if k.endswith("_hash")},
            }
            for d in s.scalars(select(Document).where(Document.id.in_(ids)).order_by(Document.id))
        ]
        collections = [
            {"collection": name, "documents": n}
            for name, n in s.execute(
                select(Collection.name, func.count())
                .join(CollectionMember, CollectionMember.collection_id == Collection.id)
                .where(CollectionMember.document_id.in_(ids))
                .group_by(Collection.name)
                .order_by(Collection.name)
            )
        ]
        slices = [
            {"lineage_id": lineage, "slice": index, "documents": n}
            for lineage, index, n in s.execute(
                select(Slice.lineage_id, Slice.index, func.count())
                .join(SliceDocument, SliceDocument.slice_id == Slice.id)
                .where(SliceDocument.document_id.in_(ids))
                .group_by(Slice.lineage_id, Slice.index)
                .order_by(Slice.lineage_id, Slice.index)
            )
        ]
        runs = [
            {"run_id": run, "kind": kind, "steps": steps, "first_step": lo, "last_step": hi}
            for run, kind, steps, lo, hi in s.execute(
                select(
                    Exposure.run_id,
                    Run.kind,
                    func.count(func.distinct(Exposure.step)),
                    func.min(Exposure.step),
                    func.max(Exposure.step),
                )
                .join(Run, Run.id == Exposure.run_id)
                .where(Exposure.document_id.in_(ids))
                .group_by(Exposure.run_id, Run.kind)
                .order_by(Exposure.run_id)
            )
        ]
        tainted_versions = list(
            s.scalars(select(ModelVersion).where(ModelVersion.tainted_at.is_not(None)).order_by(ModelVersion.id))
        )
        version_ids = [v.id for v in tainted_versions]
        checkpoints = [
            {"id": c.id, "slice": c.slice_index, "version_id": c.version_id, "purged": c.purged_at is not None}
            for c in s.scalars(select(Checkpoint).where(Checkpoint.version_id.in_(version_ids)).order_by(Checkpoint.id))
        ]
        moved = s.scalar(
            select(Event.ts)
            .where(Event.kind == "alias.set", Event.subject_id == request.result_version_id)
            .order_by(Event.id.desc())
            .limit(1)
        )
    tag = f"forget request {request_id}"
    versions = [_version_row(v) for v in tainted_versions if tag in (v.taint_reason or "")]
    with ledger.reading() as s:  # purged versions too: the receipt names what was deleted
        base = s.get(ModelVersion, request.base_version_id) if request.base_version_id else None
        result = s.get(ModelVersion, request.result_version_id) if request.result_version_id else None
    boundary = ledger.base_boundary(base.id if base is not None else None)
    tokenizer = tokenizer_status(workspace, result, audit.get("tokenizer"))
    tokenizer["purged_paths"] = erasure.get("tokenizer_purged", [])
    scan = erasure.get("scan") or {}
    remains = {
        "tainted_versions_not_purged": [v["name"] for v in versions if v["purged_at"] is None],
        "tokenizer": tokenizer["statement"],
        "files_with_hits": [h["path"] for h in scan.get("files_with_hits", [])],
        "mentions_kept": [m["key"] for m in (request.config or {}).get("mentions", []) if m["decision"] == "keep"],
        "pretraining_data": boundary["statement"] if boundary else None,
        "name_guard": _guard_statement((request.config or {}).get("name_guard")),
    }
    config = {k: v for k, v in (request.config or {}).items() if k not in ("mentions", "name_guard")}
    return {
        "request": {
            "id": request.id,
            "received_at": _iso(request.created_at),
            "completed_at": _iso(request.finished_at),
            "requester": request.requester,
            "reason": request.reason,
            "selector_digest": hashlib.sha256(canonical(request.selector)).hexdigest(),
            "selector": request.selector,
            "status": request.status,
            "method": request.method,
            "parameters": config,
        },
        "documents": documents,
        "found": {
            "collections": collections,
            "slices": slices,
            "runs": runs,
            "checkpoints": [c for c in checkpoints if c["version_id"] in {v["id"] for v in versions}],
            "conversations": erasure.get("conversations", []),
            "records_redacted": erasure.get("records", {}),
            "mentions": (request.config or {}).get("mentions", []),
            "mentions_redacted": erasure.get("mentions_redacted", 0),
            "tokenizer": tokenizer,
        },
        "versions": versions,
        "weights": {
            "before": {"version": base.name, "sha256": base.weights_sha256} if base else None,
            "after": {"version": result.name, "sha256": result.weights_sha256} if result else None,
        },
        # provenance starts here: a base-derived version's base, by name and sha256 (None:
        # trained from scratch, every example it saw is in the ledger)
        "base_model": boundary,
        "latest_moved_at": _iso(moved),
        "audit": {k: v for k, v in audit.items() if k not in ("erasure", "samples")},
        "strings": erasure.get("strings", {}),
        "storage": erasure.get("storage", {}),
        "workspace_scan": scan,
        "remains": remains,
    }


# -- signing, writing, verifying ----------------------------------------------------------------


def sign(workspace: Workspace, receipt: dict) -> dict:
    key = signing_key(workspace)
    return {
        "receipt": receipt,
        "signature": {
            "algorithm": "Ed25519",
            "public_key": _public_b64(key.public_key()),
            "value": base64.b64encode(key.sign(canonical(receipt))).decode(),
        },
    }


def write_receipt(workspace: Workspace, request_id: int, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write `receipt-N.json` and `receipt-N.html` (signed) into `out` (default `reports/`)."""
    signed = sign(workspace, build_receipt(workspace, request_id))
    directory = Path(out) if out else workspace.reports_dir()
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"receipt-{request_id}.json"
    html_path = directory / f"receipt-{request_id}.html"
    json_path.write_text(json.dumps(signed, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    html_path.write_text(render_html(signed), encoding="utf-8")
    return json_path, html_path


def verify_receipt(workspace: Workspace, path: str | Path) -> list[str]:
    """Problems with a receipt file: a bad signature, a key that is not the workspace's, or facts
    the ledger no longer agrees with. [] when it holds."""
    path = Path(path)
    try:
        signed = json.loads(path.read_text(encoding="utf-8"))
        receipt, signature = signed["receipt"], signed["signature"]
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(signature["public_key"]))
        value = base64.b64decode(signature["value"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"not a lethe receipt: {error}", Where(path=path)) from None
    problems = []
    try:
        public.verify(value, canonical(receipt))
    except InvalidSignature:
        problems.append("the signature does not match the receipt's contents")
    if signature["public_key"] != _public_b64(signing_key(workspace).public_key()):
        problems.append("the receipt was not signed with this workspace's key")
    now = build_receipt(workspace, receipt["request"]["id"])
    for part in CHECKED:
        if canonical(now[part]) != canonical(receipt[part]):
            problems.append(f"the ledger no longer agrees with the receipt's {part}")
    return problems


# -- the page -----------------------------------------------------------------------------------


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p class=none>none</p>"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _pairs(values: dict) -> str:
    return _table([{"field": k, "value": v} for k, v in values.items()])


def render_html(signed: dict) -> str:
    """A self-contained page (no scripts, no external files) of a signed receipt."""
    r = signed["receipt"]
    found = r["found"]
    sections = [
        ("Request", _pairs(r["request"])),
        ("Documents forgotten", _table(r["documents"])),
        ("Collections", _table(found["collections"])),
        ("Slices", _table(found["slices"])),
        ("Runs and optimizer steps", _table(found["runs"])),
        ("Checkpoints", _table(found["checkpoints"])),
        ("Model versions (taint, purge)", _table(r["versions"])),
        ("Weights", _pairs({k: v for k, v in r["weights"].items()} | {"latest moved at": r["latest_moved_at"]})),
        ("Base model (where provenance starts)", _pairs(r.get("base_model") or {"base_model": None})),
        ("Tokenizer", _pairs(found["tokenizer"])),
        ("Mentions", _table(found["mentions"])),
        ("Conversations redacted", _table(found["conversations"])),
        ("Other records redacted", _pairs(found["records_redacted"])),
        ("Database files", _pairs(r["storage"])),
        ("Workspace scan", _pairs({k: v for k, v in r["workspace_scan"].items() if k != "files_with_hits"})),
        ("Files with hits", _table(r["workspace_scan"].get("files_with_hits", []))),
        ("What remains", _pairs(r["remains"])),
        ("Audit", f"<pre>{html.escape(json.dumps(r['audit'], indent=2, ensure_ascii=False, default=str))}</pre>"),
        ("Signature", _pairs(signed["signature"])),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    embedded = html.escape(json.dumps(signed, ensure_ascii=False, default=str))
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top;word-break:break-all}"
        "th{background:#f3f3f3}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}.none{color:#888}"
    )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>lethe receipt {r['request']['id']}</title>"
        f"<style>{style}</style></head><body><h1>Forget request {r['request']['id']}: receipt</h1>"
        f"<p>Verify with <code>lethe requests verify-receipt receipt-{r['request']['id']}.json</code>.</p>"
        f"{body}<h2>Signed JSON</h2><pre id=signed-receipt>{embedded}</pre></body></html>"
    )
