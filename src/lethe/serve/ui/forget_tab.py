"""The Forget tab: pick documents, pick a method, unlearn in the worker, watch, then publish.

Clicking "Unlearn" records a forget request and queues a job in the ledger; the server's
`JobWorker` runs it. A `gr.Timer` polls the job's progress records from the ledger, so the
page stays responsive, and a refreshed page finds the job again (the job list is read back
from the ledger on load). When the candidate is evaluated, the before/after table and the
audit appear and the user publishes the new version or discards it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from lethe.errors import LetheError
from lethe.forget.job import queue_forget
from lethe.ledger.jobs import FINAL_JOB_STATES
from lethe.serve.ui import forget_view as view
from lethe.serve.ui.common import Loader, UIContext, error_text

EMPTY_PLOT = view.progress_frames([])[0]


def _search_choices(ctx: UIContext, text: str, collection: str | None) -> list[tuple[str, int]]:
    documents = ctx.ledger.search(text, limit=200, collection=collection or None)
    choices = []
    for doc in documents:
        snippet = " ".join((doc.content or "").split())[:90]
        choices.append((f"#{doc.id} {doc.title or doc.key} — {snippet}", doc.id))
    return choices


def _config(steps, lr, beta, alpha, batch_size, eval_every, extra: str) -> dict:
    from lethe.unlearn.config import UnlearnConfig

    config = {
        "steps": int(steps),
        "lr": float(lr),
        "beta": float(beta),
        "alpha": float(alpha),
        "forget_batch_size": int(batch_size),
        "retain_batch_size": int(batch_size),
        "eval_every": int(eval_every),
    }
    if extra and extra.strip():
        try:
            more = json.loads(extra)
        except json.JSONDecodeError as error:
            raise gr.Error(f"Other settings must be a JSON object: {error}") from None
        if not isinstance(more, dict):
            raise gr.Error('Other settings must be a JSON object, e.g. {"warmup_steps": 2}')
        config.update(more)
    UnlearnConfig.from_dict(config)  # refuse bad settings before anything is recorded
    return config


@dataclass
class ForgetTab:
    load: Loader
    base: Any
    """The base-version picker (refreshed with the other tabs' pickers)."""
    decisions: list = field(default_factory=list)
    """Events of publish / discard, for refreshing other tabs' version pickers after them."""


def build_forget_tab(ctx: UIContext) -> ForgetTab:
    from lethe.forget import list_strategies

    methods = list_strategies()
    gr.Markdown(
        "Choose what the model should forget, how, and click **Unlearn**. The job runs in "
        "the server's worker; this page only watches it, so a refresh loses nothing."
    )
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown("### 1 · What to forget")
            with gr.Row():
                query = gr.Textbox(
                    label="Search titles and content, or paste text to match",
                    lines=1,
                    max_lines=6,
                    scale=4,
                    elem_id="forget-query",
                )
                collection = gr.Dropdown(
                    label="Within collection",
                    choices=[""],
                    value="",
                    scale=2,
                    allow_custom_value=True,
                    elem_id="forget-collection",
                )
            search = gr.Button("Search", size="sm", elem_id="forget-search")
            found = gr.CheckboxGroup(
                label="Matching documents (select what to forget)",
                choices=[],
                show_select_all=True,
                elem_id="forget-results",
            )
            reason = gr.Textbox(label="Reason (recorded with the request)", lines=1, elem_id="forget-reason")
        with gr.Column(scale=2):
            gr.Markdown("### 2 · How")
            method = gr.Dropdown(
                label="Method",
                choices=methods,
                value="grad_diff" if "grad_diff" in methods else methods[0],
                elem_id="forget-method",
                info="exact = replay from the ledger without the documents",
            )
            base = gr.Dropdown(
                label="Base version", choices=[], value=None, elem_id="forget-base", allow_custom_value=True
            )
            with gr.Row():
                steps = gr.Number(label="Steps", value=20, precision=0, minimum=1, elem_id="forget-steps")
                lr = gr.Number(label="Learning rate", value=1e-4, elem_id="forget-lr")
                batch = gr.Number(label="Batch size", value=8, precision=0, minimum=1)
            with gr.Row():
                beta = gr.Number(label="β (npo, dpo)", value=0.1)
                alpha = gr.Number(label="α (retain weight)", value=1.0)
                eval_every = gr.Number(
                    label="Metrics every (steps)", value=5, precision=0, minimum=0, elem_id="forget-eval-every"
                )
            extra = gr.Textbox(
                label="Other settings (JSON, any UnlearnConfig field)",
                lines=1,
                placeholder='{"warmup_steps": 2, "lora": true}',
            )
            with gr.Row():
                evaluate = gr.Checkbox(label="Audit before / after when done", value=True, elem_id="forget-evaluate")
                audit_items = gr.Number(
                    label="Audit questions per split", value=64, precision=0, minimum=1, elem_id="forget-audit-items"
                )
            run = gr.Button("Unlearn", variant="primary", elem_id="forget-run")
    gr.Markdown("### 3 · Progress")
    with gr.Row():
        job_picker = gr.Dropdown(label="Job", choices=[], value=None, scale=4, elem_id="forget-job")
        cancel = gr.Button("Cancel job", variant="stop", scale=1, interactive=False, elem_id="forget-cancel")
    status = gr.Markdown("*No job yet.*", elem_id="forget-status")
    with gr.Row():
        loss_plot = gr.LinePlot(
            EMPTY_PLOT,
            x="step",
            y="value",
            color="series",
            title="Loss per step",
            height=240,
            elem_id="forget-loss-plot",
        )
        nll_plot = gr.LinePlot(EMPTY_PLOT, x="step", y="value", color="series", title="Forget / retain NLL", height=240)
        acc_plot = gr.LinePlot(
            EMPTY_PLOT, x="step", y="value", color="series", title="Forget / retain accuracy", height=240
        )
    gr.Markdown("### 4 · Result")
    table = gr.Dataframe(
        view.audit_table(None), label="Before / after", interactive=False, elem_id="forget-table", wrap=True
    )
    audit = gr.Markdown(view.audit_markdown(None), elem_id="forget-audit")
    with gr.Row():
        publish = gr.Button("Publish new version", variant="primary", interactive=False, elem_id="forget-publish")
        discard = gr.Button("Discard", interactive=False, elem_id="forget-discard")
    outcome = gr.Markdown("", elem_id="forget-outcome")
    timer = gr.Timer(1.0, active=False)

    def job_choices(selected=None):
        jobs = ctx.ledger.jobs(kind="forget", limit=30)
        choices = [(view.job_label(j, _request_of(j)), j.id) for j in jobs]
        if selected is None:
            live = [j.id for j in jobs if j.status not in FINAL_JOB_STATES]
            selected = live[0] if live else (jobs[0].id if jobs else None)
        return gr.update(choices=choices, value=selected)

    def _request_of(job):
        rid = (job.params or {}).get("request_id")
        try:
            return ctx.ledger.forget_request(rid) if rid is not None else None
        except LetheError:
            return None

    def render(job_id):
        """Every output the tab derives from one job, read fresh from the ledger."""
        if job_id in (None, ""):
            return (
                "*No job yet.*",
                EMPTY_PLOT,
                EMPTY_PLOT,
                EMPTY_PLOT,
                view.audit_table(None),
                view.audit_markdown(None),
                gr.update(interactive=False),
                gr.update(interactive=False),
                gr.update(interactive=False),
                gr.Timer(active=False),
            )
        job = ctx.ledger.job(int(job_id))
        request = _request_of(job)
        losses, nll, accuracy = view.progress_frames(job.progress)
        running = job.status not in FINAL_JOB_STATES
        evaluated = request is not None and request.status == "evaluated" and not running
        audit_data = request.audit if request is not None else None
        return (
            view.status_markdown(job, request),
            losses,
            nll,
            accuracy,
            view.audit_table(audit_data),
            view.audit_markdown(audit_data),
            gr.update(interactive=running and not job.cancel_requested),
            gr.update(interactive=evaluated),
            gr.update(interactive=evaluated),
            gr.Timer(active=running),
        )

    rendered = [status, loss_plot, nll_plot, acc_plot, table, audit, cancel, publish, discard, timer]

    def do_search(text, within):
        if not text or not text.strip():
            raise gr.Error("Type something to search for.")
        choices = _search_choices(ctx, text, within)
        if not choices:
            gr.Info("No current document matches.", duration=4)
        return gr.update(choices=choices, value=[value for _, value in choices][:1] if len(choices) == 1 else [])

    def start(selected, why, method_name, base_version, n_steps, rate, b, a, size, every, more, audit_it, items):
        from lethe.forget import Selector, create_request, strategy_for

        if not selected:
            raise gr.Error("Select at least one document to forget.")
        try:
            tunable = strategy_for(method_name).tunable
            config = _config(n_steps, rate, b, a, size, every, more) if tunable else {}
            request_id = create_request(
                ctx.workspace,
                Selector(docs=[str(i) for i in selected]),
                method=method_name,
                config=config,
                reason=why or None,
                requester="web-ui",
                version=base_version or "latest",
                mentions="redact",  # other documents naming the subject get a redacted revision
            )
            job_id = queue_forget(
                ctx.ledger, request_id, evaluate=bool(audit_it), audit_items=int(items) if items else None
            )
        except LetheError as error:
            raise gr.Error(error_text(error)) from None
        if ctx.worker is not None:
            ctx.worker.wake()
        return job_choices(job_id), "", gr.Timer(active=True)

    def cancel_job(job_id):
        if job_id not in (None, ""):
            ctx.ledger.request_job_cancel(int(job_id))
            gr.Info("Cancel requested; the job stops at its next step.", duration=4)

    def decide(job_id, action: str):
        from lethe.forget import discard_request, publish_request

        job = ctx.ledger.job(int(job_id))
        request_id = (job.params or {}).get("request_id")
        try:
            if action == "publish":
                done = publish_request(ctx.workspace, request_id)
                message = (
                    f"Published **{done.version}** as `latest`. Tainted: "
                    f"{', '.join(done.tainted) or 'none'}; the documents' content is erased."
                )
            else:
                discard_request(ctx.workspace, request_id)
                message = "Discarded the candidate; nothing was erased or tainted."
        except LetheError as error:
            raise gr.Error(error_text(error)) from None
        return message

    search.click(do_search, [query, collection], [found])
    query.submit(do_search, [query, collection], [found])
    run.click(
        start,
        [found, reason, method, base, steps, lr, beta, alpha, batch, eval_every, extra, evaluate, audit_items],
        [job_picker, outcome, timer],
    )
    job_picker.change(render, [job_picker], rendered, show_progress="hidden")
    timer.tick(render, [job_picker], rendered, show_progress="hidden")
    cancel.click(cancel_job, [job_picker], None).then(render, [job_picker], rendered)
    decisions = []
    for button, action in ((publish, "publish"), (discard, "discard")):
        event = button.click(lambda job_id, a=action: decide(job_id, a), [job_picker], [outcome])
        event = event.then(render, [job_picker], rendered).then(job_choices, [job_picker], [job_picker])
        decisions.append(event)

    def on_load():
        collections = [""] + [c.name for c, _ in ctx.ledger.collections()]
        return job_choices(), gr.update(choices=collections)

    return ForgetTab(load=Loader(on_load, [], [job_picker, collection]), base=base, decisions=decisions)
