"""The playground's local web server (Starlette + uvicorn): sessions, training, streaming.

Routes (all JSON unless said otherwise):
    GET  /                               the page (static HTML/CSS/JS shipped in the package)
    POST /api/sessions                   {settings} -> {id, settings, points, snapshot}
    GET  /api/sessions/{id}/stream       server-sent events: a snapshot per frame while playing
    POST /api/sessions/{id}/control      {"action": "play" | "pause" | "step" | "reset"}
    POST /api/sessions/{id}/points       {"x", "y", "label"}: add a clicked point
    POST /api/upload                     a CSV (x1, x2, label) -> a new session on that data
    GET  /api/sessions/{id}/model        the model as a neuralab .safetensors file
    GET  /api/sessions/{id}/code         a Python snippet reproducing the run

Safe by default: bound to 127.0.0.1; requests whose Host header is not this machine are
refused (DNS rebinding); another web page cannot drive it: every POST must carry a
``Content-Type`` a plain HTML form or ``fetch`` cannot send without the browser asking first
(``application/json``, ``text/csv`` for uploads), and a request from a foreign ``Origin`` is
refused (403); bodies are read in chunks and cut at their cap (413) however they are sent;
malformed input gets a 400 with a message; snapshots of a diverged run are finite JSON
(``null`` for NaN, and ``"diverged": true``); a client must finish sending a request's headers
within ``HEADER_SECONDS`` (and at most 16 KiB of them), an idle kept-alive connection is
closed after ``KEEP_ALIVE_SECONDS``.

Example:
    >>> from starlette.testclient import TestClient
    >>> client = TestClient(create_app())
    >>> client.post("/api/sessions", json={"dataset": "xor"}).json()["settings"]["hidden"]
    [4, 2]
"""
from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .data import parse_csv
from .session import ConfigError, Session, validate_config

STATIC = Path(__file__).with_name("static")
MAX_SESSIONS = 16
MAX_UPLOAD_BYTES = 256 * 1024
MAX_BODY_BYTES = 64 * 1024
HEADER_SECONDS = 10  # a client has this long to send a request's headers
KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this long
MAX_HEADER_BYTES = 16 * 1024
MAX_FRAMES = 10**6
FRAME_SECONDS = 1 / 20  # aim for 20 page updates a second (10 is the floor we promise)
STREAM_SECONDS = 30 * 60  # a stream ends by itself after this long


def create_app(allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]", "testserver")):
    """The Starlette application (used by ``neuralab playground`` and by the tests).

    Example: ``uvicorn.run(create_app(), host="127.0.0.1", port=8000)``
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    sessions: dict[str, Session] = {}

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def get_session(request: Request) -> Session:
        session = sessions.get(request.path_params["sid"])
        if session is None:
            raise HTTPException(404, "no such session (it may have expired); reload the page")
        session.last_used = time.monotonic()
        return session

    def add_session(session: Session) -> str:
        if len(sessions) >= MAX_SESSIONS:  # forget the least recently used run
            oldest = min(sessions, key=lambda k: sessions[k].last_used)
            del sessions[oldest]
        sid = secrets.token_urlsafe(12)
        sessions[sid] = session
        return sid

    async def read_body(request: Request, cap: int, what: str) -> bytes:
        # Chunk by chunk, stopping at the cap: a huge or chunked upload never sits in memory.
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise HTTPException(413, f"{what} is over {cap // 1024} KiB")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise HTTPException(413, f"{what} is over {cap // 1024} KiB")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_json(request: Request) -> dict:
        return parse_json(await read_body(request, MAX_BODY_BYTES, "the request body"),
                          "the request body")

    def created(sid: str, session: Session) -> JSONResponse:
        with session.lock:
            return finite_json({"id": sid, "settings": session.cfg, "points": session.points(),
                                "snapshot": session.snapshot()})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def new_session(request: Request) -> Response:
        cfg = validate_config(await read_json(request))
        session = Session(cfg)
        return created(add_session(session), session)

    async def upload(request: Request) -> Response:
        settings = parse_json(request.query_params.get("settings", "") or "{}", "settings")
        body = await read_body(request, MAX_UPLOAD_BYTES, "the upload")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(400, "the upload is not UTF-8 text") from None
        try:
            X, y = parse_csv(text)
        except (ValueError, csv.Error) as exc:  # csv.Error: e.g. a field over 128 KiB
            raise ConfigError(f"CSV: {exc}") from None
        regression = not np.all(np.isin(y, (0, 1)))
        settings["dataset"] = "plane" if regression else settings.get("dataset", "circle")
        if not regression and settings["dataset"] in ("plane", "multigauss"):
            settings["dataset"] = "circle"
        settings["n_points"] = max(20, len(X))
        if len(X) < 4:
            raise ConfigError("the CSV needs at least 4 rows")
        session = Session(validate_config(settings), points=(X, y))
        return created(add_session(session), session)

    async def control(request: Request) -> Response:
        session = get_session(request)
        action = (await read_json(request)).get("action")
        steps = 1
        if not isinstance(action, str):
            raise HTTPException(400, f"action must be play, pause, step or reset, got {action!r}")
        with session.lock:
            if action == "play":
                session.playing = True
            elif action == "pause":
                session.playing = False
            elif action == "step":
                session.train_steps(steps)
            elif action == "reset":
                session.playing = False
                session.reset()
            else:
                raise HTTPException(400, f"action must be play, pause, step or reset, got {action!r}")
            return finite_json({"playing": session.playing, "snapshot": session.snapshot()})

    async def add_point(request: Request) -> Response:
        session = get_session(request)
        body = await read_json(request)
        try:
            x, y, label = (float(body[k]) for k in ("x", "y", "label"))
        except (KeyError, TypeError, ValueError):
            raise HTTPException(400, "a point needs numbers x, y and label") from None
        if not all(np.isfinite([x, y, label])) or max(abs(x), abs(y)) > 6:
            raise HTTPException(400, "a point must lie within [-6, 6] on both axes")
        with session.lock:
            session.add_point(x, y, label)
            return finite_json({"points": session.points(), "snapshot": session.snapshot()})

    async def stream(request: Request) -> Response:
        session = get_session(request)
        raw = request.query_params.get("max_frames", "0") or "0"
        if not (raw.isascii() and raw.isdigit() and int(raw) <= MAX_FRAMES):
            raise HTTPException(400, f"max_frames must be a whole number from 0 to {MAX_FRAMES}, "
                                     f"got {raw[:40]!r}")
        max_frames = int(raw)

        async def frames():
            sent_version, frames_sent, started = -1, 0, time.monotonic()
            steps_per_frame = 1
            while time.monotonic() - started < STREAM_SECONDS:
                if await request.is_disconnected():
                    break
                t0 = time.monotonic()
                if session.playing:
                    # train for most of a frame's time budget, adapting the step count
                    await asyncio.to_thread(_advance, session, steps_per_frame)
                    spent = time.monotonic() - t0
                    target = FRAME_SECONDS * 0.4  # leave most of the frame to drawing
                    steps_per_frame = int(max(1, min(500, steps_per_frame * target / max(spent, 1e-4))))
                if session.version != sent_version:
                    with session.lock:
                        snap = session.snapshot()
                        snap["playing"] = session.playing
                        sent_version = session.version
                    yield f"data: {dumps_finite(snap)}\n\n"
                    frames_sent += 1
                    if max_frames and frames_sent >= max_frames:
                        break
                rest = FRAME_SECONDS - (time.monotonic() - t0)
                await asyncio.sleep(max(rest, 0.005))

        return StreamingResponse(frames(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def model_file(request: Request) -> Response:
        session = get_session(request)
        from .. import io as nlio

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "playground.safetensors")
            with session.lock:
                nlio.save(session.model, path)
            data = Path(path).read_bytes()
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="playground.safetensors"'})

    async def code(request: Request) -> Response:
        session = get_session(request)
        return PlainTextResponse(session.code())

    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail))

    async def on_config_error(request: Request, exc: ConfigError) -> Response:
        return error(400, str(exc))

    async def on_any_error(request: Request, exc: Exception) -> Response:
        return error(500, f"internal error: {type(exc).__name__}")

    # What each POST must send: a Content-Type that a foreign page's form or no-preflight
    # fetch cannot (those may only send text/plain, form encodings): the browser asks this
    # server first (CORS preflight), which it never answers yes.
    content_types = {"/api/upload": "text/csv"}

    routes = [
        Route("/", index),
        Route("/api/sessions", new_session, methods=["POST"]),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/sessions/{sid}/control", control, methods=["POST"]),
        Route("/api/sessions/{sid}/points", add_point, methods=["POST"]),
        Route("/api/sessions/{sid}/stream", stream),
        Route("/api/sessions/{sid}/model", model_file),
        Route("/api/sessions/{sid}/code", code),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: on_http_error, ConfigError: on_config_error, Exception: on_any_error})
    hosts = {h.lower() for h in allowed_hosts}

    async def host_guard(scope, receive, send):
        if scope["type"] == "http":
            refusal = _refusal(scope, hosts, content_types)
            if refusal is not None:
                await error(*refusal)(scope, receive, send)
                return
        await app(scope, receive, send)

    host_guard.sessions = sessions  # for tests
    host_guard.app = app
    return host_guard


def _refusal(scope: dict, hosts: set[str], content_types: dict[str, str]) -> tuple[int, str] | None:
    """Why a request is refused before it reaches a route, or None."""
    headers = dict(scope.get("headers") or [])
    # DNS rebinding: a foreign page that resolves its own name to 127.0.0.1 still sends its
    # own name in Host, so anything but this machine's names is refused.
    host = headers.get(b"host", b"").decode("latin-1").lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name not in hosts:
        return 400, f"refused: Host header {host!r} is not this machine"
    # A page of another site: browsers name it in Origin (on every POST, and on cross-site
    # GETs); this server's own page sends its own origin, or none.
    origin = headers.get(b"origin")
    if origin is not None:
        origin_text = origin.decode("latin-1").lower()
        if origin_text not in (f"http://{host}", f"https://{host}"):
            return 403, f"refused: request from another web page ({origin_text[:80]!r})"
    if scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
        want = content_types.get(scope.get("path", ""), "application/json")
        got = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if got != want:
            return 415, f"refused: send Content-Type: {want} (got {got or 'none'!r})"
    return None


def _int_or_inf(text: str) -> Any:
    # JSON allows 10**400; as settings it is simply out of range (and never a huge Python int).
    return int(text) if len(text) <= 18 else float(text)


def parse_json(body: bytes | str, what: str) -> dict:
    """A JSON object from a request (400 with a message for anything else).

    Example: ``parse_json(b'{"action": "play"}', "the request body")``
    """
    from starlette.exceptions import HTTPException
    try:
        value = json.loads(body or b"{}", parse_int=_int_or_inf)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, f"{what} is not valid JSON") from None
    except RecursionError:
        raise HTTPException(400, f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise HTTPException(400, f"{what} must be a JSON object {{...}}, got "
                                 f"{type(value).__name__}")
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps_finite(value: Any) -> str:
    """JSON a browser can parse: NaN and infinities (a diverged run) become ``null``.

    Example: ``dumps_finite({"loss": float("nan")})  # '{"loss": null}'``
    """
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:  # only a diverged run pays for the walk
        return json.dumps(_finite(value), allow_nan=False)


def finite_json(value: Any, status_code: int = 200) -> Any:
    """A JSONResponse of ``dumps_finite(value)``. Example: ``finite_json({"ok": True})``"""
    from starlette.responses import Response
    return Response(dumps_finite(value), status_code=status_code, media_type="application/json")


def header_timeout_protocol(seconds: float = HEADER_SECONDS) -> type:
    """uvicorn's h11 protocol with a deadline for each request's headers.

    uvicorn's keep-alive timeout only starts after a response, and is reset by every byte, so
    a client sending headers slowly (or not at all) would hold its connection forever. Here
    a timer starts when a connection opens and after each response, and is stopped only
    when a request's headers are complete; when it fires the connection is closed.

    Example: ``uvicorn.Config(app, http=header_timeout_protocol(10))``
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        header_timer: Any = None

        def arm(self) -> None:
            self.disarm()
            self.header_timer = self.loop.call_later(seconds, self.headers_too_slow)

        def disarm(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def headers_too_slow(self) -> None:
            self.header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self.disarm()  # the headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self.arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def server_config(app: Any, header_seconds: float = HEADER_SECONDS, **kwargs: Any) -> Any:
    """The uvicorn configuration the playground runs with (time and size limits included).

    Example: ``uvicorn.Server(server_config(create_app(), host="127.0.0.1", port=8050)).run()``
    """
    import uvicorn
    return uvicorn.Config(app, http=header_timeout_protocol(header_seconds),
                          timeout_keep_alive=KEEP_ALIVE_SECONDS,
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES, log_level="warning",
                          **kwargs)


def _advance(session: Session, steps: int) -> None:
    with session.lock:
        if session.playing:
            try:
                session.train_steps(steps)
            except Exception:  # noqa: BLE001 - a diverged run pauses instead of killing the stream
                session.playing = False
                raise


def serve(host: str = "127.0.0.1", port: int = 0, open_browser: bool = True) -> None:
    """Run the playground until Ctrl-C. ``port=0`` picks a free port.

    Example: ``neuralab playground --port 8050 --no-browser``
    """
    import socket
    import webbrowser

    import uvicorn

    allowed = ["127.0.0.1", "localhost", "[::1]"]
    if host not in ("127.0.0.1", "localhost", "::1"):
        allowed.append(host)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # accept connections (queued) from the moment the URL is printed
    port = sock.getsockname()[1]
    url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
    print(f"neuralab playground running at {url}  (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)
    server = uvicorn.Server(server_config(create_app(tuple(allowed))))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    print("playground stopped", flush=True)
