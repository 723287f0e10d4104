"""A handler module that starts a thread at import: it would not survive the fork."""

import threading

stop = threading.Event()
threading.Thread(target=stop.wait, name="poller", daemon=True).start()


def handler(event, context):
    return "never reached"
