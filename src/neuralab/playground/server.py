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

Safe by default: bound to 127.0.0.1, requests whose Host header is not this machine are
refused (DNS rebinding), uploads are capped and parsed strictly, sizes are capped, and
errors come back as JSON, never as a traceback.

Example:
    >>> from starlette.testclient import TestClient
    >>> client = TestClient(create_app())
    >>> client.post("/api/sessions", json={"dataset": "xor"}).json()["settings"]["hidden"]
    [4, 2]
"""
from __future__ import annotations

import asyncio
import json
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

    async def read_json(request: Request) -> Any:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(400, "the request body is not valid JSON") from None

    def created(sid: str, session: Session) -> JSONResponse:
        with session.lock:
            return JSONResponse({"id": sid, "settings": session.cfg, "points": session.points(),
                                 "snapshot": session.snapshot()})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def new_session(request: Request) -> Response:
        cfg = validate_config(await read_json(request))
        session = Session(cfg)
        return created(add_session(session), session)

    async def upload(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"the upload is over {MAX_UPLOAD_BYTES // 1024} KiB")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(400, "the upload is not UTF-8 text") from None
        try:
            X, y = parse_csv(text)
        except ValueError as exc:
            raise ConfigError(f"CSV: {exc}") from None
        settings = json.loads(request.query_params.get("settings", "{}") or "{}")
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
            return JSONResponse({"playing": session.playing, "snapshot": session.snapshot()})

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
            return JSONResponse({"points": session.points(), "snapshot": session.snapshot()})

    async def stream(request: Request) -> Response:
        session = get_session(request)
        max_frames = int(request.query_params.get("max_frames", "0") or 0)

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
                    yield f"data: {json.dumps(snap)}\n\n"
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
        # DNS rebinding: a foreign page that resolves its own name to 127.0.0.1 still sends
        # its own name in Host, so anything but this machine's names is refused.
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in hosts:
                response = error(400, f"refused: Host header {host!r} is not this machine")
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    host_guard.sessions = sessions  # for tests
    host_guard.app = app
    return host_guard


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
    config = uvicorn.Config(create_app(tuple(allowed)), log_level="warning")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    print("playground stopped", flush=True)
