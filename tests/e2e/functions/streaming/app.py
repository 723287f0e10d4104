"""Streaming handlers (generators): the e2e streaming tests and the emulator matrix serve this file."""


def chunks(event, context):
    for index in range(event["count"]):
        yield f"chunk {index}\n".encode()


def breaks(event, context):
    yield b"first part\n"
    raise ValueError("the stream broke")
