"""Consumer pages: the SQL console (schema browser, results, EXPLAIN, downloads), access
requests with the cross-boundary preview, my requests and grants, exports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from starlette.responses import Response, StreamingResponse

from gateway.console.api import ApiError, explain_error
from gateway.console.context import Console, UserConsole
from gateway.console.results_preview import read_preview
from policies.facts import PURPOSES

router = APIRouter(prefix="/console", include_in_schema=False)

PREVIEW_ROWS: Final = 500
PREVIEW_BYTES: Final = 8 * 1024 * 1024
DOWNLOADS: Final = {"csv": "csv", "parquet": "parquet"}


async def _queryable(console: Console) -> list[dict[str, Any]]:
    """Datasets the schema browser lists: my organisation's, and those granted to it (with
    the granted columns)."""
    datasets = await console.api.get("/v1/datasets")
    grants = await console.api.optional("/v1/grants", [])
    granted: dict[str, set[str] | None] = {}
    for grant in grants:
        if grant.get("revoked_at"):
            continue
        columns = grant.get("columns")
        previous = granted.get(grant["dataset_id"], set())
        if columns is None or previous is None:
            granted[grant["dataset_id"]] = None
        else:
            granted[grant["dataset_id"]] = previous | set(columns)
    mine = console.me.get("org_slug") if console.me else None
    shown = []
    for dataset in datasets:
        if not dataset.get("current_version"):
            continue
        columns = [c["name"] for c in dataset.get("contract", {}).get("columns", [])]
        if dataset.get("org") == mine:
            shown.append({**dataset, "columns": columns})
        elif dataset["id"] in granted:
            allowed = granted[dataset["id"]]
            keep = columns if allowed is None else [c for c in columns if c in allowed]
            shown.append({**dataset, "columns": keep})
    return shown


@router.get("/query")
async def query_page(
    console: UserConsole, sql: Annotated[str, Query(max_length=65_536)] = ""
) -> Response:
    return console.render(
        "query.html",
        sql=sql,
        datasets=await _queryable(console),
        result=None,
        explain=None,
        problem=None,
    )


@router.post("/query")
async def run_query(console: UserConsole) -> Response:
    values = await console.check_csrf()
    sql = values.get("sql", "").strip()
    action = values.get("action", "run")
    if action in DOWNLOADS and sql:
        return await _download(console, sql, DOWNLOADS[action])
    if action == "export" and sql:
        return await _export(console, sql)
    result = explain = problem = None
    if not sql:
        problem = console.t.text("Write a SELECT statement first.")
    else:
        try:
            if action == "explain":
                explain = await console.api.post("/v1/query/explain", {"sql": sql})
            else:
                streamed = await console.api.stream(
                    "POST", "/v1/query", json_body={"sql": sql, "format": "arrow"}
                )
                result = await read_preview(
                    streamed.body, max_rows=PREVIEW_ROWS, max_bytes=PREVIEW_BYTES
                )
        except ApiError as error:
            problem = error.message
    return console.render(
        "query.html",
        status=200 if problem is None else 422,
        sql=sql,
        datasets=await _queryable(console),
        result=result,
        explain=explain,
        problem=problem,
        preview_rows=PREVIEW_ROWS,
    )


async def _download(console: Console, sql: str, fmt: str) -> Response:
    try:
        streamed = await console.api.stream(
            "POST", "/v1/query", json_body={"sql": sql, "format": fmt}
        )
    except ApiError as error:
        return console.render(
            "query.html",
            status=422,
            sql=sql,
            datasets=await _queryable(console),
            result=None,
            explain=None,
            problem=error.message,
        )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        streamed.body,
        media_type=streamed.headers.get("content-type", "application/octet-stream"),
        headers={"content-disposition": f'attachment; filename="query-{stamp}.{fmt}"'},
    )


async def _export(console: Console, sql: str) -> Response:
    try:
        export = await console.api.post("/v1/exports", {"sql": sql})
    except ApiError as error:
        return console.render(
            "query.html",
            status=422,
            sql=sql,
            datasets=await _queryable(console),
            result=None,
            explain=None,
            problem=explain_error(error),
        )
    return console.redirect(f"/console/exports/{export['id']}")


@router.get("/exports/{export_id}")
async def export_page(export_id: str, console: UserConsole) -> Response:
    """An export's status, lineage and (once written) its presigned download links."""
    export = await console.api.get(f"/v1/exports/{export_id}")
    datasets = {d["id"]: d for d in await console.api.get("/v1/datasets")}
    return console.render(
        "export.html", export=export, datasets=datasets, running=export["status"] == "running"
    )


# --- access requests ---------------------------------------------------------------------------


@router.get("/access")
async def my_access(console: UserConsole) -> Response:
    requests = await console.api.optional("/v1/access-requests", None)
    grants = await console.api.optional("/v1/grants", [])
    exports = await console.api.optional("/v1/exports", [])
    datasets = {d["id"]: d for d in await console.api.get("/v1/datasets")}
    mine = console.me.get("org_id") if console.me else None
    listed = _items(requests)
    return console.render(
        "access.html",
        requests=listed,
        requests_available=requests is not None,
        # a provider also sees requests for its datasets: then say whose they are
        show_org=any(r.get("org_id") != mine for r in listed),
        grants=[g for g in grants if g.get("org_id") == mine],
        exports=exports,
        datasets=datasets,
    )


def _items(page: Any) -> list[dict[str, Any]]:
    if page is None:
        return []
    if isinstance(page, dict):
        return list(page.get("items") or page.get("results") or [])
    return list(page)


@router.get("/access/new")
async def request_form(
    console: UserConsole, dataset: Annotated[str, Query(max_length=64)]
) -> Response:
    target = await console.api.get(f"/v1/datasets/{dataset}")
    return console.render(
        "access_new.html",
        dataset=target,
        purposes=PURPOSES,
        values={},
        preview=None,
        problem=None,
    )


@router.post("/access/new")
async def submit_request(console: UserConsole) -> Response:
    values = await console.check_csrf()
    dataset = await console.api.get(f"/v1/datasets/{values.get('dataset_id', '')}")
    body = _request_body(values, console.form_list("columns"))
    if values.get("action") == "preview":
        preview = await _preview(console, body)
        return console.render(
            "access_new.html",
            dataset=dataset,
            purposes=PURPOSES,
            values=values,
            chosen=set(body["columns"] or []),
            preview=preview,
            problem=None,
        )
    try:
        await console.api.post("/v1/access-requests", body)
    except ApiError as error:
        problem = explain_error(error)
        if error.missing_endpoint:
            problem = console.t.text("Access requests are not available on this gateway yet.")
        return console.render(
            "access_new.html",
            status=422,
            dataset=dataset,
            purposes=PURPOSES,
            values=values,
            chosen=set(body["columns"] or []),
            preview=None,
            problem=problem,
        )
    return console.redirect("/console/access?notice=requested")


def _request_body(values: dict[str, str], columns: list[str]) -> dict[str, Any]:
    """The form as ``POST /v1/access-requests`` takes it (the API validates it)."""
    days = values.get("days", "90").strip()
    return {
        "dataset_id": values.get("dataset_id", ""),
        "columns": columns or None,
        "purpose": values.get("purpose", "analytics"),
        "duration_days": int(days) if days.isdigit() else days,
        "justification": values.get("justification", ""),
        "accept_no_onward_transfer": values.get("no_onward_transfer") == "yes",
    }


async def _preview(console: Console, body: dict[str, Any]) -> dict[str, Any]:
    """What the cross-boundary rules would let through, as the policy engine answers it."""
    try:
        answer = await console.api.post("/v1/access-requests/preview", body)
    except ApiError as error:
        if error.missing_endpoint:
            return {"available": False}
        return {"available": True, "error": error.message}
    return {"available": True, "decision": answer or {}}


@router.post("/grants/{grant_id}/revoke")
async def revoke_grant(grant_id: str, console: UserConsole) -> Response:
    values = await console.check_csrf()
    await console.api.delete(f"/v1/grants/{grant_id}")
    back = values.get("back", "/console/access")
    return console.redirect(
        f"{back if back.startswith('/console/') else '/console/access'}?notice=revoked"
    )
