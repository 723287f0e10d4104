"""Raises a user exception while the module is imported: init fails with that class as errorType."""


class BootError(Exception):
    pass


raise BootError("failed during init")


def handler(event, context):
    return "unreachable"
