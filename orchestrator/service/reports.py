"""GET /reports/<trial_id>/<token>/report.html: a trial's HTML report, read-only, for reviewers.

The token is the trial's report capability (orchestrator.report.access); a wrong token, an
unknown trial or a malformed path are all the same 404, so the route tells a prober nothing.
The page is served with the same Content-Security-Policy it carries inline, and with no
Referer, so following a link out of the report never hands the capability to another site.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from orchestrator.config import Settings
from orchestrator.report.access import report_file
from orchestrator.store import Store

ROUTE = "/reports/{trial_id}/{token}/report.html"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def setup_report_route(app: web.Application, settings: Settings, store: Store) -> None:
    async def report(request: web.Request) -> web.Response:
        path = report_file(settings, store, request.match_info["trial_id"], request.match_info["token"])
        if path is None:
            raise web.HTTPNotFound(text="not found")
        body = await asyncio.to_thread(path.read_bytes)
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=HEADERS)

    app.router.add_get(ROUTE, report)
