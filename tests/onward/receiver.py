"""A service's receiving end, as a real HTTP server in a process of its own.

    python tests/onward/receiver.py --port P --log FILE [--fail-first N] [--secret S]

Takes what the gateway sends an onward service: a FHIR transaction Bundle (`POST /fhir`),
a cancelled Task (`PUT /fhir/Task/{id}`) and a signed webhook (`POST /hook`). It answers the
first N requests 503 (a service having a bad moment), checks webhook signatures and the
replay window, and appends one JSON line per request to FILE: the method, path, the headers
that matter, the parsed body, and what it did with it (`refused`, `failed`, `new`,
`repeat`). It keeps state only in FILE, so a receiver killed and started again on the same
port and file remembers what it already took (a service's own database), and a repeat of a
delivery (same Task id, same Idempotency-Key) is recorded as `repeat`, never as `new`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--secret", default="")
    args = parser.parse_args()
    failures = {"left": args.fail_first}

    def seen_keys() -> set[str]:
        if not args.log.exists():
            return set()
        keys = set()
        for line in args.log.read_text().splitlines():
            entry = json.loads(line)
            if entry["result"] in ("new", "repeat"):
                keys.add(entry["key"])
        return keys

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _handle(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            entry = {
                "method": self.command,
                "path": self.path,
                "idempotency_key": self.headers.get("idempotency-key"),
                "body": json.loads(raw or b"null"),
            }
            if failures["left"] > 0:
                failures["left"] -= 1
                self._log(entry, "failed", 503)
                return
            if self.path == "/hook" and not self._signed(raw):
                self._log(entry, "refused", 401)
                return
            entry["key"] = self._key(entry)
            result = "repeat" if entry["key"] in seen_keys() else "new"
            self._log(entry, result, 200)

        def _key(self, entry: dict) -> str:
            body = entry["body"]
            if self.path == "/hook":
                return f"hook:{body['type']}:{body['task_id']}"
            if body.get("resourceType") == "Bundle":
                task = next(e for e in body["entry"] if e["resource"]["resourceType"] == "Task")
                return f"fhir:deliver:{task['resource']['id']}"
            return f"fhir:{body['status']}:{body['id']}"

        def _signed(self, raw: bytes) -> bool:
            stamp = self.headers.get("x-referral-timestamp") or ""
            given = self.headers.get("x-referral-signature") or ""
            if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
                return False
            mac = hmac.new(args.secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
            return hmac.compare_digest(given, "v1=" + mac.hexdigest())

        def _log(self, entry: dict, result: str, status: int) -> None:
            entry["result"] = result
            with args.log.open("a") as f:
                f.write(json.dumps(entry) + "\n")
            body = b'{"resourceType":"Bundle","type":"transaction-response"}'
            self.send_response(status)
            self.send_header("content-type", "application/fhir+json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = _handle
        do_PUT = _handle

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("ready", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
