"""A loopback HTTP peer that speaks SageMaker runtime ``InvokeEndpoint`` (rest-json) for the real boto3 client.

``POST /endpoints/<name>/invocations`` with the body, ``Content-Type``, ``Accept`` and optionally
``X-Amzn-SageMaker-Target-Model`` headers, as botocore sends them. The first calls can be answered
from a script of failures (``"throttle"``: HTTP 400 ThrottlingException, ``"500"``: InternalFailure,
``"slow"``: answers after ``slow_seconds``), bodies containing ``poison`` get a 424 ModelError, and
everything else is scored by the in-process serving functions on ``model_dir``. Errors carry the
``x-amzn-ErrorType`` header and a JSON ``__type``/``message`` body, which is what botocore parses.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ndr_resources.model_invokers import InProcessInvoker, InvokeError


@dataclass
class RecordedRequest:
    path: str
    content_type: str
    accept: str
    target_model: str | None
    body_bytes: int


@dataclass
class SageMakerPeer:
    model_dir: str
    script: list[str] = field(default_factory=list)
    poison: bytes | None = None
    slow_seconds: float = 0.5
    requests: list[RecordedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SageMakerPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects

            def log_message(self, *args) -> None:  # one stderr line per request otherwise
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                peer._serve(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        parts = handler.path.split("/")
        if len(parts) != 4 or parts[1] != "endpoints" or parts[3] != "invocations":
            return _answer(handler, 404, b'{"message": "no such route"}', error="UnknownOperationException")
        request = RecordedRequest(handler.path, handler.headers.get("Content-Type", ""), handler.headers.get("Accept", ""),
                                  handler.headers.get("X-Amzn-SageMaker-Target-Model"), len(body))
        with self._lock:
            self.requests.append(request)
            scripted = self.script.pop(0) if self.script else None
        if scripted == "throttle":
            return _answer(handler, 400, b'{"__type": "ThrottlingException", "message": "Rate exceeded"}',
                           error="ThrottlingException")
        if scripted == "500":
            return _answer(handler, 500, b'{"__type": "InternalFailure", "message": "try again"}', error="InternalFailure")
        if scripted == "slow":
            time.sleep(self.slow_seconds)
        if self.poison is not None and self.poison in body:
            message = json.dumps({"__type": "ModelError", "message": "Received client error (400) from model",
                                  "OriginalStatusCode": 400}).encode()
            return _answer(handler, 424, message, error="ModelError")
        try:
            response = InProcessInvoker(self.model_dir).invoke(body, request.content_type, request.accept)
        except InvokeError as exc:
            message = json.dumps({"__type": "ModelError", "message": str(exc)}).encode()
            return _answer(handler, 424, message, error="ModelError")
        _answer(handler, 200, response, content_type=request.accept)


def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, *, error: str | None = None,
            content_type: str = "application/json") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
    if error:
        handler.send_header("x-amzn-ErrorType", error)
    else:
        handler.send_header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
    handler.end_headers()
    handler.wfile.write(body)
