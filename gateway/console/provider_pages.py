"""Provider pages: my datasets, register a dataset from a proposed contract, edit the
contract, upload with progress, the validation report, and who uses my data."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.console.api import ApiError, explain_error
from gateway.console.context import Console, UserConsole

router = APIRouter(prefix="/console", include_in_schema=False)

ENCODINGS: Final = ("utf-8", "utf-8-sig", "gb18030", "gbk", "big5", "big5hkscs")
SAMPLE_ROWS: Final = 200  # quarantined rows shown on the report page


@router.get("/provider")
async def provider_home(console: UserConsole) -> Response:
    datasets = await console.api.get("/v1/datasets")
    mine = [d for d in datasets if console.me and d.get("org") == console.me.get("org_slug")]
    usage = await console.api.optional("/v1/usage", None)
    names = {d["id"]: d["sql_name"] for d in mine}
    return console.render("provider.html", datasets=mine, usage=usage, names=names)


# --- register a dataset ----------------------------------------------------------------------


@router.get("/datasets/new")
async def new_dataset(console: UserConsole) -> Response:
    return console.render("dataset_new.html", values={}, proposal=None, problem=None)


@router.post("/datasets/new/propose")
async def propose_contract(console: UserConsole) -> Response:
    """A sample file (multipart) → the contract the API proposes, shown for editing."""
    values = await console.check_csrf()
    form = await console.request.form()
    sample = form.get("sample")
    proposal = problem = None
    if not isinstance(sample, UploadFile) or not sample.filename:
        problem = console.t.text("Choose a sample file first.")
    else:
        try:
            response = await console.api.request(
                "POST",
                "/v1/contracts/proposals",
                params={"filename": sample.filename, "encoding": values.get("encoding", "utf-8")},
                content=_file_chunks(sample),
            )
            proposal = response.json()
        except ApiError as error:
            problem = error.message
    return console.render(
        "dataset_new.html",
        values=values,
        proposal=proposal,
        contract_text=json.dumps(proposal["contract"], ensure_ascii=False, indent=2)
        if proposal
        else values.get("contract", ""),
        problem=problem,
        status=200 if problem is None else 422,
    )


@router.post("/datasets/new")
async def create_dataset(console: UserConsole) -> Response:
    values = await console.check_csrf()
    try:
        contract = json.loads(values.get("contract", ""))
    except ValueError as error:
        return _new_dataset_problem(
            console,
            values,
            console.t.text("The contract is not valid JSON: %(error)s", error=str(error)),
        )
    body = {
        "name": values.get("name", "").strip(),
        "title": values.get("title", "").strip(),
        "description": values.get("description", "").strip(),
        "classification": values.get("classification", "internal"),
        "licence": values.get("licence", "").strip(),
        "contract": contract,
    }
    try:
        dataset = await console.api.post("/v1/datasets", body)
    except ApiError as error:
        return _new_dataset_problem(console, values, explain_error(error))
    return console.redirect(f"/console/datasets/{dataset['id']}/upload?notice=created")


def _new_dataset_problem(console: Console, values: dict[str, str], problem: str) -> Response:
    return console.render(
        "dataset_new.html",
        status=422,
        values=values,
        proposal=None,
        contract_text=values.get("contract", ""),
        problem=problem,
    )


# --- the contract ------------------------------------------------------------------------------


@router.get("/datasets/{dataset_id}/contract")
async def contract_page(dataset_id: str, console: UserConsole) -> Response:
    dataset = await console.api.get(f"/v1/datasets/{dataset_id}")
    current = await console.api.get(f"/v1/datasets/{dataset_id}/contract")
    return console.render(
        "contract.html",
        dataset=dataset,
        current=current,
        contract_text=json.dumps(current["contract"], ensure_ascii=False, indent=2),
        suggestions=await pi_suggestions(console, dataset_id),
        pi_classes=PI_CLASSES,
        problem=None,
    )


@router.post("/datasets/{dataset_id}/contract")
async def save_contract(dataset_id: str, console: UserConsole) -> Response:
    values = await console.check_csrf()
    dataset = await console.api.get(f"/v1/datasets/{dataset_id}")
    current = await console.api.get(f"/v1/datasets/{dataset_id}/contract")
    problem = None
    try:
        contract = json.loads(values.get("contract", ""))
        base = int(values.get("base_version") or current["version"])
        await console.api.put(
            f"/v1/datasets/{dataset_id}/contract",
            {"contract": contract, "note": values.get("note", ""), "base_version": base},
        )
    except ValueError as error:
        problem = console.t.text("The contract is not valid JSON: %(error)s", error=str(error))
    except ApiError as error:
        problem = explain_error(error)
    if problem is None:
        return console.redirect(f"/console/datasets/{dataset_id}?notice=contract_saved")
    return console.render(
        "contract.html",
        status=422,
        dataset=dataset,
        current=current,
        contract_text=values.get("contract", ""),
        suggestions=await pi_suggestions(console, dataset_id),
        pi_classes=PI_CLASSES,
        problem=problem,
    )


# --- upload and the validation report ----------------------------------------------------------


@router.get("/datasets/{dataset_id}/upload")
async def upload_page(dataset_id: str, console: UserConsole) -> Response:
    dataset = await console.api.get(f"/v1/datasets/{dataset_id}")
    return console.render("upload.html", dataset=dataset, encodings=ENCODINGS)


@router.post("/datasets/{dataset_id}/upload")
async def upload(
    dataset_id: str,
    console: UserConsole,
    filename: Annotated[str, Query(max_length=255)] = "",
    encoding: Annotated[str, Query(max_length=20)] = "utf-8",
    mode: Annotated[str, Query(max_length=10)] = "replace",
) -> Response:
    """The file, streamed to ``POST /v1/datasets/{id}/uploads``.

    The page's script sends the raw file (``X-CSRF-Token`` header) so the browser reports
    the bytes sent, and gets the job as JSON; without scripts, the form posts multipart
    and the browser lands on the job's report."""
    request = console.request
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        values = await console.check_csrf()
        form = await request.form()
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return console.redirect(f"/console/datasets/{dataset_id}/upload?notice=no_file")
        params = {
            "filename": file.filename,
            "encoding": values.get("encoding", "utf-8"),
            "mode": values.get("mode", "replace"),
        }
        job = (
            await console.api.request(
                "POST",
                f"/v1/datasets/{dataset_id}/uploads",
                params=params,
                content=_file_chunks(file),
            )
        ).json()
        return console.redirect(f"/console/jobs/{job['id']}")
    console.check_csrf_header()
    params = {"filename": filename, "encoding": encoding, "mode": mode}
    try:
        response = await console.api.request(
            "POST",
            f"/v1/datasets/{dataset_id}/uploads",
            params=params,
            content=request.stream(),
            headers={"content-type": "application/octet-stream"},
        )
    except ApiError as error:
        body = {"error": {"code": error.code, "message": error.message, "detail": error.detail}}
        return JSONResponse(body, status_code=error.status)
    job = response.json()
    return JSONResponse({"job": job, "report": f"/console/jobs/{job['id']}"}, status_code=202)


async def _file_chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(1 << 20):
        yield chunk


@router.get("/jobs/{job_id}.json")
async def job_status(job_id: str, console: UserConsole) -> Response:
    """The job for the upload page's progress bar (polled while it runs)."""
    try:
        job = await console.api.get(f"/v1/jobs/{job_id}")
    except ApiError as error:
        body = {"error": {"code": error.code, "message": error.message, "detail": error.detail}}
        return JSONResponse(body, status_code=error.status)
    return JSONResponse(job, headers={"cache-control": "no-store"})


@router.get("/jobs/{job_id}")
async def job_report(job_id: str, console: UserConsole) -> Response:
    job = await console.api.get(f"/v1/jobs/{job_id}")
    dataset = await console.api.get(f"/v1/datasets/{job['dataset_id']}")
    page: dict[str, Any] = {"rows": [], "total": 0}
    if job.get("links", {}).get("quarantine"):
        page = await console.api.get(f"/v1/jobs/{job_id}/quarantine", limit=SAMPLE_ROWS)
    version = None
    if job.get("version"):
        versions = await console.api.get(f"/v1/datasets/{job['dataset_id']}/versions")
        version = next((v for v in versions if v["version"] == job["version"]), None)
    return console.render(
        "job.html",
        job=job,
        dataset=dataset,
        sample=page["rows"],
        total_rejected=page["total"],
        rules=_failed_rules(version, page["rows"]),
        rules_complete=_rules_complete(version, page),
        running=job["status"] in ("queued", "running"),
    )


def _failed_rules(
    version: dict[str, Any] | None, rows: list[dict[str, Any]]
) -> list[tuple[str, int]]:
    """Which rules failed how often: the version's own tally when the API gives it,
    otherwise counted over the quarantined rows shown."""
    tally = ((version or {}).get("quality") or {}).get("failures_by_rule")
    if isinstance(tally, dict) and tally:
        return sorted(((str(k), int(v)) for k, v in tally.items()), key=lambda kv: -kv[1])
    counts: Counter[str] = Counter()
    for row in rows:
        for reason in row.get("reasons", []):
            column = reason.get("column")
            rule = reason.get("rule", "?")
            counts[f"{column}: {rule}" if column else str(rule)] += 1
    return counts.most_common()


def _rules_complete(version: dict[str, Any] | None, page: dict[str, Any]) -> bool:
    tally = ((version or {}).get("quality") or {}).get("failures_by_rule")
    return bool(tally) or page["total"] <= len(page["rows"])


@router.get("/jobs/{job_id}/quarantine")
async def quarantine_download(job_id: str, console: UserConsole) -> Response:
    """The whole quarantine report (Parquet) as a download."""
    response = await console.api.request(
        "GET", f"/v1/jobs/{job_id}/quarantine", params={"format": "parquet"}
    )
    return StreamingResponse(
        iter([response.content]),
        media_type=response.headers.get("content-type", "application/octet-stream"),
        headers={
            "content-disposition": response.headers.get(
                "content-disposition", f'attachment; filename="quarantine-{job_id}.parquet"'
            )
        },
    )


# --- personal-information classes the scan suggested ---------------------------------------

PI_CLASSES: Final = ("non_pi", "pi_direct_id", "pi_quasi_id", "pi_other", "spi")


async def pi_suggestions(console: Console, dataset_id: str) -> dict[str, str]:
    """The PII scan's class per unclassified column, from the newest version's schema."""
    versions = await console.api.get(f"/v1/datasets/{dataset_id}/versions")
    if not versions:
        return {}
    newest = max(versions, key=lambda v: v["version"])
    return {
        entry["name"]: entry["pi"]
        for entry in newest.get("schema") or []
        if isinstance(entry, dict) and entry.get("pi_source") == "scan" and entry.get("pi")
    }


@router.post("/datasets/{dataset_id}/contract/pi")
async def confirm_pi(dataset_id: str, console: UserConsole) -> Response:
    """Confirm (or correct) the classes of the unclassified columns: a new contract version."""
    values = await console.check_csrf()
    classes = {
        key.removeprefix("pi:"): value
        for key, value in values.items()
        if key.startswith("pi:") and value
    }
    body: dict[str, Any] = {"columns": classes, "note": values.get("note", "")}
    if values.get("base_version", "").isdigit():
        body["base_version"] = int(values["base_version"])
    try:
        await console.api.post(f"/v1/datasets/{dataset_id}/contract/pi", body)
    except ApiError as error:
        dataset = await console.api.get(f"/v1/datasets/{dataset_id}")
        current = await console.api.get(f"/v1/datasets/{dataset_id}/contract")
        return console.render(
            "contract.html",
            status=422,
            dataset=dataset,
            current=current,
            contract_text=json.dumps(current["contract"], ensure_ascii=False, indent=2),
            suggestions=await pi_suggestions(console, dataset_id),
            pi_classes=PI_CLASSES,
            problem=explain_error(error),
        )
    return console.redirect(f"/console/datasets/{dataset_id}?notice=contract_saved")


# --- trilingual metadata -----------------------------------------------------------------------

LANGS: Final = ("en", "zh-Hans", "zh-Hant")
FREQUENCIES: Final = (
    "continuous", "hourly", "daily", "weekly", "monthly", "quarterly", "annual", "irregular",
    "never",
)  # fmt: skip


@router.get("/datasets/{dataset_id}/metadata")
async def metadata_page(dataset_id: str, console: UserConsole) -> Response:
    metadata = await console.api.get(f"/v1/datasets/{dataset_id}/metadata")
    return _metadata_form(console, metadata, problem=None)


def _metadata_form(console: Console, metadata: dict[str, Any], problem: str | None) -> Response:
    return console.render(
        "metadata.html",
        status=200 if problem is None else 422,
        metadata=metadata,
        langs=LANGS,
        frequencies=FREQUENCIES,
        problem=problem,
    )


@router.post("/datasets/{dataset_id}/metadata")
async def save_metadata(dataset_id: str, console: UserConsole) -> Response:
    """Titles, descriptions and keywords per language, tags, frequency, contact, column docs:
    ``PATCH /v1/datasets/{id}/metadata`` (which checks who may and what is valid)."""
    values = await console.check_csrf()
    metadata = await console.api.get(f"/v1/datasets/{dataset_id}/metadata")
    body = _metadata_body(values, metadata)
    try:
        await console.api.request("PATCH", f"/v1/datasets/{dataset_id}/metadata", json=body)
    except ApiError as error:
        return _metadata_form(console, {**metadata, **body}, explain_error(error))
    return console.redirect(f"/console/datasets/{dataset_id}?notice=metadata_saved")


def _metadata_body(values: dict[str, str], metadata: dict[str, Any]) -> dict[str, Any]:
    def texts(field: str) -> dict[str, str]:
        return {lang: text for lang in LANGS if (text := values.get(f"{field}:{lang}", "").strip())}

    keywords = {
        lang: [w.strip() for w in values.get(f"keywords:{lang}", "").split(",") if w.strip()]
        for lang in LANGS
    }
    columns = {
        column["name"]: texts(f"col:{column['name']}") or None
        for column in metadata.get("columns", [])
    }
    contact = {k: v for k in ("name", "email") if (v := values.get(f"contact:{k}", "").strip())}
    body: dict[str, Any] = {
        "title": texts("title"),
        "description": texts("description"),
        "keywords": {lang: words for lang, words in keywords.items() if words},
        "tags": [t.strip() for t in values.get("tags", "").split(",") if t.strip()],
        "columns": columns,
    }
    if contact:
        body["contact"] = contact
    if values.get("update_frequency"):
        body["update_frequency"] = values["update_frequency"]
    if values.get("base_revision", "").isdigit():
        body["base_revision"] = int(values["base_revision"])
    return body
