"""The README's picture of the web console (docs/console.png), taken with the headless Chromium of the tests.

Starts a server with three small functions, sends them a minute of mixed traffic from a few threads
(some invokes fail, some print), then loads /_rapidboot/ over the DevTools protocol (cdp.py) and saves a
screenshot of the live page.

    .venv/bin/python tests/e2e/console_screenshot.py [--seconds 60] [--out docs/console.png]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx
from cdp import Browser, find_chromium
from e2e_harness import running_server, write_tables

APP = """
import random, time

def orders(event, context):
    print(f"order {event['n']}: {random.choice(['2 items', '1 item', '5 items'])}, paid")
    time.sleep(random.uniform(0.002, 0.012))
    return {"ok": True}

def thumbnails(event, context):
    time.sleep(random.uniform(0.02, 0.09))
    print(f"resized photo-{event['n']}.jpg 4032x3024 -> 320x240")
    return {"thumbnail": f"photo-{event['n']}-320.jpg"}

def webhook(event, context):
    if event["n"] % 9 == 0:
        raise ValueError(f"signature mismatch for delivery {event['n']}")
    print("webhook accepted")
    return {"status": 202}
"""


def traffic(endpoint: str, until: float, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=endpoint, timeout=30) as client:
        n = 0
        while time.monotonic() < until:
            n += 1
            name = rng.choice(["orders", "orders", "thumbnails", "webhook"])
            client.post(f"/2015-03-31/functions/{name}/invocations", json={"n": n})
            time.sleep(rng.uniform(0.0, 0.25))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="of traffic before the picture (60)")
    parser.add_argument("--out", type=Path, default=Path("docs/console.png"))
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        parser.error("no Chromium here (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="rapidboot-console-shot-") as scratch:
        root = Path(scratch)
        (root / "code").mkdir()
        (root / "code" / "app.py").write_text(APP)
        config = write_tables(
            root / "rapidboot.toml",
            {
                "orders": {"code": "code", "handler": "app.orders", "memory": 256},
                "thumbnails": {"code": "code", "handler": "app.thumbnails", "memory": 1024},
                "webhook": {"code": "code", "handler": "app.webhook", "memory": 128},
            },
        )
        with running_server(["--config", str(config)], root, check_shutdown=False) as server:
            until = time.monotonic() + args.seconds
            threads = [
                threading.Thread(target=traffic, args=(server.endpoint, until, seed)) for seed in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            with Browser(chromium, width=1280, height=1060) as browser:
                browser.navigate(f"{server.endpoint}/_rapidboot/")
                browser.wait_for("document.querySelector('#status.live') !== null")
                browser.wait_for("document.querySelectorAll('#invocations tbody tr').length > 10")
                browser.evaluate(  # one log tail open, as a reader would
                    "document.querySelector('#invocations tbody tr details')?.setAttribute('open', '')"
                )
                args.out.write_bytes(browser.screenshot())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
