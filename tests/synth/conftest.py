"""Fixtures for the synth tests: a small corpus of DOCUMENT_SCHEMA Parquet, and fake OpenAI-compatible servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from schemas import DOCUMENT_SCHEMA

TEXTS = {
    "web": (
        "The Universal Declaration of Human Rights was adopted in 1948 by the United Nations General Assembly "
        "in Paris. It sets out fundamental human rights to be universally protected."
    ),
    "stem": "A train travels 120 km in 1.5 hours. Its average speed is 120 / 1.5 = 80 km/h.",
    "code": 'def area(r: float) -> float:\n    """Area of a circle."""\n    return 3.14159 * r * r\n',
}


def write_corpus(root: Path, n: int = 30) -> Path:
    """`n` documents over three domains and two languages, Hive-partitioned by domain as a stage writes them."""
    rows = []
    for i in range(n):
        domain = ["web", "stem", "code"][i % 3]
        rows.append(
            {
                "id": f"doc{i:03d}",
                "text": f"{TEXTS[domain]} (#{i})" + " more" * (i % 7),
                "source": "src",
                "domain": domain,
                "lang": "fr" if i % 4 == 0 else "en",
                "lang_score": 0.9,
                "url": None,
                "path": None,
                "license": "MIT",
                "metadata": None,
            }
        )
    table = pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA)
    for domain in ("web", "stem", "code"):
        part = table.filter(pc.equal(table["domain"], domain)).drop_columns(["domain"])
        d = root / "docs" / f"domain={domain}"
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, d / "part-0.parquet")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "run")


class FakeEngine:
    """An OpenAI-compatible /v1/completions endpoint in a thread: answers from `reply(body)`, records prompts."""

    def __init__(self, reply=None) -> None:
        self.prompts: list[str] = []
        self.bodies: list[bytes] = []  # each request's bytes as sent
        self.reply = reply or (
            lambda body: (
                200,
                {
                    "choices": [{"text": "Title\n" + "word " * 20, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 21},
                },
            )
        )
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                engine.bodies.append(raw)
                body = json.loads(raw)
                engine.prompts.append(body["prompt"])
                status, data = engine.reply(body)
                out = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_engines():
    made: list[FakeEngine] = []

    def make(reply=None) -> FakeEngine:
        made.append(FakeEngine(reply))
        return made[-1]

    yield make
    for e in made:
        e.close()


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    """A model folder for provenance only (generate hashes its weights; the fake engines never read it)."""
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"weights")
    return d
