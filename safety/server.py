"""A local Perspective-compatible server on 127.0.0.1, for tests, demos and offline rehearsals.

It serves the discovery document and `v1alpha1/comments:analyze` with the real request, response
and error shapes, a per-second quota (429 RESOURCE_EXHAUSTED beyond it) and injectable faults:
a share of 503s, slow answers (client timeouts), malformed JSON, and 400s for chosen texts.

Its scores are NOT Perspective's. They come from a documented deterministic lexicon scorer: for
each attribute, 0.9 if the text contains one of that attribute's words below (TOXICITY: any
word of the others), else a small value in [0, 0.3) derived from a hash of the text.

    paligemma-eval perspective-server --port 8765 --qps 2
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from paligemma_eval.safety.scorers import DISCOVERY_DOC

LEXICON = {
    "INSULT": {"stupid", "idiot", "ugly", "moron", "loser"},
    "THREAT": {"kill", "shoot", "hurt", "destroy"},
    "PROFANITY": {"damn", "hell", "crap", "bloody"},
    "IDENTITY_ATTACK": {"subhuman", "vermin"},
}
MAX_TEXT_BYTES = 20480


def lexicon_score(text: str, attribute: str) -> float:
    words = set(re.findall(r"[a-z]+", text.lower()))
    hit_words = set().union(*LEXICON.values()) if attribute == "TOXICITY" else LEXICON[attribute]
    if words & hit_words:
        return 0.9
    digest = hashlib.sha256(f"{attribute}:{text}".encode()).digest()
    return round(0.3 * digest[0] / 256, 4)


@dataclass
class Faults:
    qps: float | None = None              # quota: requests per rolling second, 429 beyond
    error_rate: float = 0.0               # share of requests answered 503
    slow_every: int = 0                   # every Nth request answers after `slow_seconds`
    slow_seconds: float = 0.0
    malformed_every: int = 0              # every Nth request answers broken JSON
    bad_texts: dict[str, str] = field(default_factory=dict)  # text -> errorType (400)
    refuse_all: bool = False              # every text answered 400 (as for an unsupported language)
    api_key: str | None = None            # when set, other keys get 400 API_KEY_INVALID
    seed: int = 0


class LocalPerspective:
    """The server plus counters the tests read: requests per text, scored texts, 429s."""

    def __init__(self, faults: Faults | None = None, port: int = 0) -> None:
        self.faults = faults or Faults()
        self.random = random.Random(self.faults.seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.requests_by_text: Counter[str] = Counter()
        self.scored_by_text: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.recent: list[float] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "LocalPerspective":
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "LocalPerspective":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _over_quota(self) -> bool:
        if not self.faults.qps:
            return False
        now = time.monotonic()
        self.recent = [t for t in self.recent if now - t < 1.0]
        if len(self.recent) >= self.faults.qps:
            return True
        self.recent.append(now)
        return False

    def analyze(self, body: dict, key: str | None) -> tuple[int, object, float]:
        """(status, payload or raw bytes, delay) for one request."""
        text = str((body.get("comment") or {}).get("text", ""))
        with self.lock:
            self.requests += 1
            number = self.requests
            self.requests_by_text[text] += 1
            faults = self.faults
            if faults.api_key and key != faults.api_key:
                return 400, _error(400, "API key not valid.", "INVALID_ARGUMENT",
                                   "API_KEY_INVALID"), 0.0
            if self._over_quota():
                return 429, _error(429, "Quota exceeded for quota metric 'Analysis requests'.",
                                   "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED"), 0.0
            if faults.error_rate and self.random.random() < faults.error_rate:
                return 503, _error(503, "The service is currently unavailable.", "UNAVAILABLE",
                                   None), 0.0
            delay = faults.slow_seconds if faults.slow_every and number % faults.slow_every == 0 \
                else 0.0
            if faults.malformed_every and number % faults.malformed_every == 0:
                return 200, b'{"attributeScores": {"TOXICITY": ', delay
        problem = _invalid(text, body, faults.bad_texts) or (
            ("LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE", "Attribute scoring is not supported for this "
             "comment.") if faults.refuse_all else None)
        if problem:
            return 400, _error(400, problem[1], "INVALID_ARGUMENT", problem[0]), delay
        attributes = list((body.get("requestedAttributes") or {}).keys())
        scores = {a: {"summaryScore": {"value": lexicon_score(text, a), "type": "PROBABILITY"},
                      "spanScores": [{"begin": 0, "end": len(text), "score": {
                          "value": lexicon_score(text, a), "type": "PROBABILITY"}}]}
                  for a in attributes}
        if delay == 0.0:
            with self.lock:
                self.scored_by_text[text] += 1
        return 200, {"attributeScores": scores, "languages": body.get("languages") or ["en"],
                     "detectedLanguages": ["en"]}, delay

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: tests read counters instead
                pass

            def _send(self, status: int, payload: object) -> None:
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                with server.lock:
                    server.statuses[status] += 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def do_GET(self) -> None:
                if urlparse(self.path).path == "/$discovery/rest":
                    document = json.loads(DISCOVERY_DOC.read_text())
                    document["rootUrl"] = document["baseUrl"] = server.url + "/"
                    self._send(200, document)
                else:
                    self._send(404, _error(404, "Not found", "NOT_FOUND", None))

            def do_POST(self) -> None:
                if urlparse(self.path).path != "/v1alpha1/comments:analyze":
                    self._send(404, _error(404, "Not found", "NOT_FOUND", None))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, _error(400, "Invalid JSON payload", "INVALID_ARGUMENT", None))
                    return
                query = dict(p.split("=", 1) for p in urlparse(self.path).query.split("&")
                             if "=" in p)
                key = self.headers.get("x-goog-api-key") or query.get("key")
                status, payload, delay = server.analyze(body, key)
                if delay:
                    time.sleep(delay)
                self._send(status, payload)

        return Handler


def _invalid(text: str, body: dict, bad_texts: dict[str, str]) -> tuple[str, str] | None:
    if text in bad_texts:
        return bad_texts[text], f"Attribute scoring failed for this comment ({bad_texts[text]})."
    if not text.strip():
        return "COMMENT_EMPTY", "Comment must be non-empty."
    if len(text.encode()) > MAX_TEXT_BYTES:
        return "COMMENT_TOO_LONG", "Comment text was too many bytes."
    languages = body.get("languages") or ["en"]
    if any(language != "en" for language in languages):
        return ("LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
                f"Attribute TOXICITY does not support request languages: {','.join(languages)}")
    return None


def _error(code: int, message: str, status: str, error_type: str | None) -> dict:
    error: dict = {"code": code, "message": message, "status": status}
    if error_type:
        error["details"] = [{"@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error",
                             "errorType": error_type}]
    return {"error": error}
