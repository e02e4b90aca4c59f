"""Token impact: how much a version memorised each document it trained on, token by token.

The impact of token t of document d on version V is

    log p_V(x_t | x_<t) - log p_ref(x_t | x_<t)

where `ref` never saw d: the lineage's checkpoint just before the slice that first exposed d
(or the base weights, for the first slice). Positive impact is what training on d added; the
largest values mark the memorised tokens. Per document the ledger keeps the mean impact (the
score), the losses, and the top-k tokens with a context window: the Changelog LLM's layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lethe.errors import InputError

if TYPE_CHECKING:
    from lethe.workspace import Workspace

CONTEXT = 8


@dataclass
class Reference:
    """A model that never saw a group of documents."""

    label: str
    version_id: int | None
    load: Callable[[], torch.nn.Module]


@torch.no_grad()
def label_logprobs(model: torch.nn.Module, input_ids: Sequence[int], labels: Sequence[int]) -> torch.Tensor:
    """log p(label_t) at every position whose label is not -100 (HF labels: unshifted)."""
    model.eval()
    ids = torch.tensor([list(input_ids)], dtype=torch.long)
    logits = model(input_ids=ids).logits[0, :-1].float()
    targets = torch.tensor(list(labels)[1:], dtype=torch.long)
    logp = torch.log_softmax(logits, -1)
    mask = targets != -100
    out = torch.full((len(targets),), float("nan"))
    out[mask] = logp[mask].gather(-1, targets[mask].unsqueeze(-1)).squeeze(-1)
    return out  # position i scores token i + 1


def _references(workspace, version) -> tuple[dict[int, Reference], dict[int, int]]:
    """Per slice index the reference before it; per document the slice that first exposed it."""
    from lethe.model.io import load_version
    from lethe.model.presets import load_base

    ledger = workspace.ledger
    if version.lineage_id is None:
        raise InputError(f"{version.name} has no lineage: token impact needs its training slices")
    lineage = ledger.lineage(version.lineage_id)
    first_slice: dict[int, int] = {}
    refs: dict[int, Reference] = {}
    for sl, ids in ledger.slices(lineage.id):
        if version.slice_index is not None and sl.index > version.slice_index:
            break
        for doc in ids:
            first_slice.setdefault(doc, sl.index)
        if sl.index == 0:

            def base(lineage=lineage):
                _, tokenizer = load_version(version.path)
                return load_base(lineage.base, tokenizer, seed=(lineage.config or {}).get("init_seed", 0))

            refs[0] = Reference(f"{lineage.base} (initial weights)", None, base)
        else:
            ck = ledger.checkpoint_for(lineage.id, sl.index - 1)
            if ck is None:
                continue
            ref_version = ledger.resolve_version(ck.version_id, allow_tainted=True)
            refs[sl.index] = Reference(
                ref_version.name, ref_version.id, lambda path=ref_version.path: load_version(path)[0]
            )
    return refs, first_slice


def _record(doc_id: int, examples, v_logps, r_logps, top_k: int) -> dict | None:
    tokens, impacts, v_all, r_all = [], [], [], []
    offset = 0
    for example, v, r in zip(examples, v_logps, r_logps):
        mask = ~torch.isnan(v)
        for i in torch.nonzero(mask).flatten().tolist():
            tokens.append((offset + i + 1, example.input_ids[i + 1]))
            impacts.append(float(v[i] - r[i]))
            v_all.append(float(v[i]))
            r_all.append(float(r[i]))
        offset += len(example.input_ids)
    if not impacts:
        return None
    order = sorted(range(len(impacts)), key=lambda i: -impacts[i])[:top_k]
    total = offset
    top = [
        {
            "token_id": int(tokens[i][1]),
            "position": int(tokens[i][0]),
            "impact": impacts[i],
            "context_start": max(0, tokens[i][0] - CONTEXT),
            "context_end": min(total, tokens[i][0] + CONTEXT + 1),
        }
        for i in order
    ]
    average_loss = -sum(v_all) / len(v_all)
    reference_loss = -sum(r_all) / len(r_all)
    return {
        "document_id": doc_id,
        "score": sum(impacts) / len(impacts),
        "total_tokens": total,
        "top_tokens": top,
        "average_loss": average_loss,
        "relative_loss": average_loss / reference_loss if reference_loss else None,
    }


def compute_impacts(
    workspace: Workspace,
    version_ref: str = "latest",
    *,
    document_ids: Sequence[int] | None = None,
    top_k: int = 20,
    callback: Callable[[int, int], None] | None = None,
) -> dict:
    """Compute and store token impacts of a version for the documents it trained on."""
    from lethe.model.io import load_version
    from lethe.train.config import lineage_config
    from lethe.train.examples import build_examples

    ledger = workspace.ledger
    version = ledger.resolve_version(version_ref, allow_tainted=True)
    model, tokenizer = load_version(version.path)
    train_config = lineage_config(ledger, version.lineage_id)
    refs, first_slice = _references(workspace, version)
    seen = set(
        ledger.documents_seen(version.id, candidates=document_ids)
        if document_ids is not None
        else ledger.documents_seen(version.id)
    )
    groups: dict[int, list[int]] = {}
    for doc_id in sorted(seen):
        if doc_id in first_slice:
            groups.setdefault(first_slice[doc_id], []).append(doc_id)
    done, total, stored = 0, sum(len(g) for g in groups.values()), 0
    for slice_index, doc_ids in sorted(groups.items()):
        ref = refs.get(slice_index)
        if ref is None:
            continue
        reference = ref.load()
        records = []
        for doc in ledger.documents(doc_ids):
            examples = build_examples([doc], tokenizer, train_config)
            if not examples:
                continue
            v = [label_logprobs(model, e.input_ids, e.labels) for e in examples]
            r = [label_logprobs(reference, e.input_ids, e.labels) for e in examples]
            record = _record(doc.id, examples, v, r, top_k)
            if record:
                for token in record["top_tokens"]:
                    token["token"] = tokenizer.decode([token["token_id"]])
                records.append(record)
            done += 1
            if callback:
                callback(done, total)
        stored += ledger.store_token_impacts(
            version.id, records, reference_version_id=ref.version_id, reference=ref.label
        )
    return {"version": version.name, "documents": stored, "slices": len(groups)}


def token_weights_for(workspace: Workspace, version, forget_examples: Sequence[dict]) -> list[list[float]]:
    """Per forget example, max(0, impact) at each label position (0 elsewhere): what `impact_ga` pushes down."""
    from lethe.model.io import load_version

    model, _ = load_version(version.path)
    refs, first_slice = _references(workspace, version)
    cache: dict[int, torch.nn.Module] = {}
    weights = []
    for example in forget_examples:
        index = first_slice.get(example["document_id"], 0)
        if index not in cache:
            cache[index] = refs[index].load() if index in refs else refs[min(refs)].load()
        v = label_logprobs(model, example["input_ids"], example["labels"])
        r = label_logprobs(cache[index], example["input_ids"], example["labels"])
        impact = torch.nan_to_num(v - r, nan=0.0).clamp(min=0)
        weights.append([0.0] + impact.tolist())  # aligned with labels (position 0 has no prediction)
    return weights
