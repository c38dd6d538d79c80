"""Steward pages: the approval queue of my regions (approve, narrow or deny with masks,
row filter, expiry and minimum group size), grants to revoke, and the audit log with the
chain verification status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from starlette.responses import Response

from gateway.console.api import ApiError
from gateway.console.context import Console, UserConsole

router = APIRouter(prefix="/console", include_in_schema=False)

MASKS: Final = ("", "hmac", "redact", "partial", "generalise", "null")


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
            await console.api.post(
                f"/v1/access-requests/{request_id}/deny", {"reason": values.get("reason", "")}
            )
        else:
            await console.api.post(
                f"/v1/access-requests/{request_id}/approve", _approval(console, values)
            )
    except ApiError as error:
        return await _render_queue(console, error.message)
    notice = "denied" if decision == "deny" else "approved"
    return console.redirect(f"/console/steward?notice={notice}")


def _approval(console: Console, values: dict[str, str]) -> dict[str, Any]:
    """The decision as the API takes it: the columns kept (narrowing), a mask per column,
    row filter, expiry and minimum group size."""
    columns = console.form_list("columns")
    masks = {}
    for key, kind in values.items():
        if key.startswith("mask:") and kind:
            masks[key.removeprefix("mask:")] = kind
    days = values.get("days", "")
    min_group = values.get("min_group_size", "")
    body: dict[str, Any] = {
        "columns": columns or None,
        "masks": [{"column": column, "kind": kind} for column, kind in masks.items()],
        "row_filter": values.get("row_filter", "").strip() or None,
        "note": values.get("note", ""),
    }
    if days.isdigit() and int(days) > 0:
        body["expires_at"] = (datetime.now(UTC) + timedelta(days=int(days))).isoformat()
    if min_group.isdigit() and int(min_group) > 0:
        body["min_group_size"] = int(min_group)
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
    return console.render(
        "audit.html",
        events=log.get("events", log.get("items", [])) if isinstance(log, dict) else log,
        chain=verify if verify is not None else log,
        filters={"actor": actor, "action": action, "limit": limit},
    )
