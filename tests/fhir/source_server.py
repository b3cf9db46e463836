"""A small FHIR R4 server for tests, run in its own process: the ED system the gateway polls
and fetches notified resources from.

    python -m tests.fhir.source_server [--token TOKEN]     # prints the port, then serves

FHIR (under /fhir): `GET Encounter?class=&_lastUpdated=gt..&_include=Encounter:subject
&_revinclude=Condition:encounter&_count=&_page=` answers searchset Bundles sorted by
lastUpdated with absolute `next` links; `GET Condition?encounter=Encounter/a,Encounter/b`
or `Condition?_lastUpdated=gt..` (and Observation) searches by Encounter or by change;
`GET metadata` is a CapabilityStatement (listing `_revinclude` only when it is honoured);
`GET {type}/{id}` reads. Conditions and Observations are held apart from Encounters, as a
real server holds them.

Test controls (under /_control): POST resources (upsert, each with its meta.lastUpdated),
POST fail {"count", "status"} (the next FHIR requests fail), POST options {"ignore_class",
"ignore_include", "ignore_sort" (serve in the order added), "revinclude" (honour and
advertise `_revinclude`), "advertise_revinclude" (advertise it, but ignore it),
"expire_pages" (410 for any page after the first), "next_base"}, GET requests (what was
asked).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


class State:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.resources: dict[str, dict[str, Any]] = {}
        self.fail_count = 0
        self.fail_status = 500
        self.options: dict[str, Any] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def do_POST(self) -> None:
            body = self._body()
            with state.lock:
                if self.path == "/_control/resources":
                    for r in body:
                        state.resources[f"{r['resourceType']}/{r['id']}"] = r
                elif self.path == "/_control/fail":
                    state.fail_count = body["count"]
                    state.fail_status = body.get("status", 500)
                elif self.path == "/_control/options":
                    state.options.update(body)
                else:
                    self._send(404, {"resourceType": "OperationOutcome", "issue": []})
                    return
            self._send(200, {"ok": True})

        def do_GET(self) -> None:
            if self.path == "/_control/requests":
                with state.lock:
                    self._send(200, list(state.requests))
                return
            with state.lock:
                state.requests.append(self.path)
                failing = state.fail_count > 0
                if failing:
                    state.fail_count -= 1
            if state.token and self.headers.get("Authorization") != f"Bearer {state.token}":
                self._send(401, {"resourceType": "OperationOutcome", "issue": []})
                return
            if failing:
                self._send(state.fail_status, {"resourceType": "OperationOutcome", "issue": []})
                return
            url = urlsplit(self.path)
            parts = [p for p in url.path.split("/") if p]
            if parts[:1] != ["fhir"]:
                self._send(404, {"resourceType": "OperationOutcome", "issue": []})
            elif parts == ["fhir", "metadata"]:
                self._send(200, self._capabilities())
            elif len(parts) == 3:
                with state.lock:
                    found = state.resources.get(f"{parts[1]}/{parts[2]}")
                if found is None:
                    self._send(404, {"resourceType": "OperationOutcome", "issue": []})
                else:
                    self._send(200, found)
            elif parts == ["fhir", "Encounter"]:
                query = parse_qs(url.query)
                with state.lock:
                    expired = state.options.get("expire_pages") and "_page" in query
                if expired:
                    self._send(410, {"resourceType": "OperationOutcome", "issue": []})
                else:
                    self._send(200, self._search(query))
            elif parts in (["fhir", "Condition"], ["fhir", "Observation"]):
                self._send(200, self._search_related(parts[1], parse_qs(url.query)))
            else:
                self._send(404, {"resourceType": "OperationOutcome", "issue": []})

        def _search(self, query: dict[str, list[str]]) -> dict[str, Any]:
            base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
            since = query.get("_lastUpdated", ["gt0000"])[0][2:]
            count = int(query.get("_count", ["100"])[0])
            page = int(query.get("_page", ["0"])[0])
            with state.lock:
                options = dict(state.options)
                encounters = [
                    r
                    for key, r in state.resources.items()
                    if key.startswith("Encounter/")
                    and _instant(r["meta"]["lastUpdated"]) > _instant(since)
                    and (
                        options.get("ignore_class")
                        or r["class"]["code"] == query.get("class", [""])[0]
                    )
                ]
                if not options.get("ignore_sort"):
                    encounters.sort(key=lambda r: _instant(r["meta"]["lastUpdated"]))
                chunk = encounters[page * count : (page + 1) * count]
                entries = [
                    {
                        "fullUrl": f"{base}/Encounter/{r['id']}",
                        "resource": r,
                        "search": {"mode": "match"},
                    }
                    for r in chunk
                ]
                if "Encounter:subject" in query.get("_include", []) and not options.get(
                    "ignore_include"
                ):
                    refs = {r["subject"]["reference"] for r in chunk}
                    entries += [
                        {
                            "fullUrl": f"{base}/{ref}",
                            "resource": state.resources[ref],
                            "search": {"mode": "include"},
                        }
                        for ref in sorted(refs)
                        if ref in state.resources
                    ]
                if options.get("revinclude"):
                    asked = {
                        v.split(":")[0]
                        for v in query.get("_revinclude", [])
                        if v.endswith(":encounter")
                    }
                    refs = {f"Encounter/{r['id']}" for r in chunk}
                    entries += [
                        {"fullUrl": f"{base}/{key}", "resource": r, "search": {"mode": "include"}}
                        for key, r in state.resources.items()
                        if key.split("/")[0] in asked
                        and (r.get("encounter") or {}).get("reference") in refs
                    ]
            echoed = query if options.get("revinclude") else _without(query, "_revinclude")
            links = [{"relation": "self", "url": f"{base}/Encounter?{urlencode(echoed, True)}"}]
            if (page + 1) * count < len(encounters):
                nxt = {k: v for k, v in query.items()}
                nxt["_page"] = [str(page + 1)]
                next_base = options.get("next_base", base)
                links.append(
                    {"relation": "next", "url": f"{next_base}/Encounter?{urlencode(nxt, True)}"}
                )
            return {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(encounters),
                "link": links,
                "entry": entries,
            }

        def _search_related(self, kind: str, query: dict[str, list[str]]) -> dict[str, Any]:
            """Conditions or Observations by `encounter` (a list) and/or `_lastUpdated=gt`."""
            base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
            wanted = {ref for v in query.get("encounter", []) for ref in v.split(",")}
            since = query.get("_lastUpdated", [None])[0]
            count = int(query.get("_count", ["100"])[0])
            page = int(query.get("_page", ["0"])[0])
            with state.lock:
                found = [
                    r
                    for key, r in state.resources.items()
                    if key.startswith(f"{kind}/")
                    and (
                        "encounter" not in query
                        or (r.get("encounter") or {}).get("reference") in wanted
                    )
                    and (since is None or _instant(r["meta"]["lastUpdated"]) > _instant(since[2:]))
                ]
                if not state.options.get("ignore_sort"):
                    found.sort(key=lambda r: _instant(r["meta"]["lastUpdated"]))
            chunk = found[page * count : (page + 1) * count]
            links = [{"relation": "self", "url": f"{base}/{kind}?{urlencode(query, True)}"}]
            if (page + 1) * count < len(found):
                nxt = dict(query) | {"_page": [str(page + 1)]}
                links.append({"relation": "next", "url": f"{base}/{kind}?{urlencode(nxt, True)}"})
            return {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(found),
                "link": links,
                "entry": [
                    {
                        "fullUrl": f"{base}/{kind}/{r['id']}",
                        "resource": r,
                        "search": {"mode": "match"},
                    }
                    for r in chunk
                ],
            }

        def _capabilities(self) -> dict[str, Any]:
            with state.lock:
                revinclude = bool(
                    state.options.get("revinclude") or state.options.get("advertise_revinclude")
                )
            encounter: dict[str, Any] = {
                "type": "Encounter",
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchInclude": ["Encounter:subject"],
            }
            if revinclude:
                encounter["searchRevInclude"] = ["Condition:encounter", "Observation:encounter"]
            return {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": ["json"],
                "rest": [
                    {
                        "mode": "server",
                        "resource": [
                            encounter,
                            {"type": "Patient", "interaction": [{"code": "read"}]},
                            {"type": "Condition", "interaction": [{"code": "search-type"}]},
                            {"type": "Observation", "interaction": [{"code": "search-type"}]},
                        ],
                    }
                ],
            }

    return Handler


def _without(query: dict[str, list[str]], name: str) -> dict[str, list[str]]:
    return {k: v for k, v in query.items() if k != name}


def _instant(text: str) -> datetime:
    if text == "0000":
        return datetime.min.replace(tzinfo=UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(State(args.token)))
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
