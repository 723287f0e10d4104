"""A stand-in for AWS's `aws-lambda-rie`, for tests of `rapidboot bench --rie` on machines without it.

Same command line as the real one (`--runtime-interface-emulator-address HOST:PORT`, `--runtime-api-address`,
then the runtime command), same invoke path, one invoke at a time, the runtime started on the first invoke,
a REPORT line with an Init Duration on standard output. Its Runtime API is the benchmarks' minimal one (on
a free port: the requested address is only parsed).
"""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import subprocess
import sys
import threading
import time

from rapidboot.benchmarks.coldstart import RuntimeAPI
from rapidboot.benchmarks.rie import INVOKE_PATH


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime-interface-emulator-address", default="0.0.0.0:8080")
    parser.add_argument("--runtime-api-address", default="127.0.0.1:9001")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    host, _, port = args.runtime_interface_emulator_address.rpartition(":")
    api = RuntimeAPI()
    lock = threading.Lock()
    runtime: list[subprocess.Popen[bytes]] = []
    spawned_at = 0.0

    class Invoke(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            nonlocal spawned_at
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != INVOKE_PATH:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with lock:  # one invoke at a time, as the real emulator
                first = not runtime
                if first:
                    spawned_at = time.perf_counter()
                    env = {**os.environ, "AWS_LAMBDA_RUNTIME_API": api.address}
                    runtime.append(subprocess.Popen(args.command, env=env))
                result = api.invoke(body)
                line = (
                    f"REPORT RequestId: fake\tDuration: {(result.received_at - result.sent_at) * 1000:.2f} ms"
                )
                if first and api.first_next_at is not None:
                    line += f"\tInit Duration: {(api.first_next_at - spawned_at) * 1000:.2f} ms"
                print(line, flush=True)
            self.send_response(200)
            self.send_header("Content-Length", str(len(result.body)))
            self.end_headers()
            self.wfile.write(result.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Invoke)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the runtime too
    try:
        server.serve_forever()
    finally:
        for process in runtime:
            process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
