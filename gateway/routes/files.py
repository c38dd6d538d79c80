"""Signed downloads for the local-filesystem store (S3 stores hand out presigned URLs)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from gateway.deps import PlatformDep
from gateway.errors import Forbidden

router = APIRouter(tags=["files"])


@router.get("/files/{bucket}/{key:path}")
def download(
    bucket: str, key: str, expires: int, signature: str, platform: PlatformDep
) -> StreamingResponse:
    if not platform.check_download(bucket, key, expires, signature):
        raise Forbidden("the download link is invalid or has expired; ask for a new one")
    store = platform.lake.store_for_bucket(bucket)
    return StreamingResponse(store.open_stream(bucket, key), media_type="application/octet-stream")
