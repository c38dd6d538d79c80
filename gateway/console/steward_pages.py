"""Steward pages: the approval queue of my regions (approve, narrow or deny with masks,
row filter, expiry and minimum group size), grants to revoke, and the audit log with the
chain verification status."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from starlette.responses import Response

from gateway.console.api import ApiError, explain_error
from gateway.console.context import Console, UserConsole

router = APIRouter(prefix="/console", include_in_schema=False)

MASKS: Final = ("", "hmac", "redact", "partial", "generalise", "null")
# Parameters a mask needs; the steward picks the kind, the console fills the usual values.
MASK_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "partial": {"keep_prefix": 2, "keep_suffix": 2},
    "generalise": {"to": "month"},
}


@router.get("/steward")
async def queue(console: UserConsole) -> Response:
    return await _render_queue(console)


async def _render_queue(console: Console, problem: str | None = None) -> Response:
    pending = await console.api.optional("/v1/access-requests", None, status="pending")
    grants = await console.api.optional("/v1/grants", [])
    datasets = {d["id"]: d for d in await console.api.get("/v1/datasets")}
    return console.render(
        "steward.html",
        requests=_items(pending),
        available=pending is not None,
        grants=[g for g in grants if not g.get("revoked_at")],
        datasets=datasets,
        masks=MASKS,
        problem=problem,
        status=200 if problem is None else 422,
    )


def _items(page: Any) -> list[dict[str, Any]]:
    if page is None:
        return []
    if isinstance(page, dict):
        return list(page.get("items") or page.get("results") or [])
    return list(page)


@router.post("/steward/requests/{request_id}/decide")
async def decide(request_id: str, console: UserConsole) -> Response:
    values = await console.check_csrf()
    decision = values.get("decision", "approve")
    try:
        if decision == "deny":
            reason = values.get("reason", "").strip() or console.t.text("Denied by the steward.")
            await console.api.post(f"/v1/access-requests/{request_id}/deny", {"reason": reason})
        else:
            await console.api.post(
                f"/v1/access-requests/{request_id}/approve", _approval(console, values)
            )
    except ApiError as error:
        return await _render_queue(console, explain_error(error))
    notice = "denied" if decision == "deny" else "approved"
    return console.redirect(f"/console/steward?notice={notice}")


def _approval(console: Console, values: dict[str, str]) -> dict[str, Any]:
    """The decision as ``POST /v1/access-requests/{id}/approve`` takes it: the columns
    kept (narrowing), a mask per column with its parameters, row filter, duration and the
    minimum group size (which makes the grant aggregate-only); the API validates it."""
    masks = []
    for column in console.form_list("columns"):
        kind = values.get(f"mask:{column}", "")
        if kind:
            masks.append({"column": column, "kind": kind, **MASK_DEFAULTS.get(kind, {})})
    body: dict[str, Any] = {
        "columns": console.form_list("columns") or None,
        "masks": masks,
        "row_filter": values.get("row_filter", "").strip() or None,
        "note": values.get("reason", ""),
    }
    days = values.get("days", "").strip()
    if days:
        body["duration_days"] = int(days) if days.isdigit() else days
    min_group = values.get("min_group_size", "").strip()
    if min_group and min_group != "0":
        body["aggregate_only"] = True
        body["min_group_size"] = int(min_group) if min_group.isdigit() else min_group
        body["subject_column"] = values.get("subject_column") or None
    return body


@router.get("/audit")
async def audit(
    console: UserConsole,
    actor: Annotated[str, Query(max_length=200)] = "",
    action: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    log = await console.api.get("/v1/audit", actor=actor, action=action, limit=limit)
    verify = await console.api.optional("/v1/audit/verify", None)
    if verify is None:  # a gateway without the full check: the log's own chain flag
        verify = {"intact": log.get("chain_intact"), "first_broken": log.get("broken_at")}
    return console.render(
        "audit.html",
        events=log.get("events", []),
        regions=log.get("regions", []),
        chain=verify,
        filters={"actor": actor, "action": action, "limit": limit},
    )
