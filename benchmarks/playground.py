"""Playground speed: page updates per second and training steps per second, in a real browser.

The page is driven as a person would (headless Debian chromium through Playwright): a
4-hidden-layer network (8 neurons each) on 500 spiral points, play for a few seconds, then
count the frames the page drew and the steps the server trained. Targets: at
least 10 page updates and 100 training steps a second on 2 cores.

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/playground.py
"""
from __future__ import annotations

import argparse
import os
import socket
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import sync_playwright
    from threadpoolctl import threadpool_info

    from neuralab.playground import create_app

    blas = [(i.get("internal_api"), i.get("architecture"), i.get("num_threads")) for i in threadpool_info()]
    print(f"BLAS: {blas}  load average: {os.getloadavg()}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = (f"http://127.0.0.1:{port}/#dataset=spiral&n_points=500&hidden=8,8,8,8&activation=relu"
           f"&optimizer=adam&lr=0.01&features=x1,x2,sin(x1),sin(x2)")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(url)
            page.wait_for_function("document.body.dataset.frames >= 1")
            page.click("#play")
            page.wait_for_timeout(1000)  # let the step count per frame settle
            f0 = int(page.evaluate("document.body.dataset.frames"))
            s0 = int(page.inner_text("#step-count"))
            t0 = time.perf_counter()
            page.wait_for_timeout(args.seconds * 1000)
            f1 = int(page.evaluate("document.body.dataset.frames"))
            s1 = int(page.inner_text("#step-count"))
            elapsed = time.perf_counter() - t0
            test_loss = page.inner_text("#test-loss")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    print(f"page updates: {(f1 - f0) / elapsed:.1f} per second (target >= 10)")
    print(f"training steps: {(s1 - s0) / elapsed:.0f} per second (target >= 100)")
    print(f"test loss after {s1} steps: {test_loss}")


if __name__ == "__main__":
    main()
