"""A function URL with `InvokeMode: RESPONSE_STREAM`: each line reaches the HTTP client as it is yielded.

`http_response` writes the status and headers first (the HTTP integration prelude), as Node's
`awslambda.HttpResponseStream.from` does; rapidboot's runtime provides it (`rapidboot.runtime.streaming`).
"""

import time

from rapidboot.runtime.streaming import http_response


def handler(event, context):
    count = int((event.get("queryStringParameters") or {}).get("count", "3"))

    def lines():
        for i in range(1, count + 1):
            yield f"line {i} of {count}\n"
            time.sleep(0.2)  # a slow producer: watch them arrive one by one (curl -N)

    return http_response(lines(), status_code=200, headers={"content-type": "text/plain"})
