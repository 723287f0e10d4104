"""The Invoke API's front door: its routes (`invoke_api.py`), the streamed answer and its eventstream
framing, recursion detection and tenant isolation as an invoke is checked, and the `rapidboot invoke`
client. It translates the protocol into calls on the data plane and renders the answers."""
