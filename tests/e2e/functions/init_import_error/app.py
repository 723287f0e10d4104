"""Imports a module that does not exist: init must fail with Runtime.ImportModuleError."""

import rapidboot_e2e_missing_dependency  # noqa: F401


def handler(event, context):
    return "unreachable"
