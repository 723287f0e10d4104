"""A layer's module: /opt/python is on the function's sys.path, after the task root (as on Lambda)."""


def greet(name: str) -> str:
    return f"Hello, {name}, from a layer merged into /opt!"
