"""Google Cloud Storage's XML error answers, for the result files and the staged uploads."""

from __future__ import annotations

from starlette.responses import Response


def gcs_error(code: str, message: str, details: str) -> Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message><Details>{details}</Details></Error>"
    )
    return Response(
        body, status_code=403 if code != "NoSuchKey" else 404, media_type="application/xml"
    )
