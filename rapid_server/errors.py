"""Every AWS error-type string the server produces or recognises, defined once."""

from __future__ import annotations

import re

# Runtime API error bodies (reference section 1).
INVALID_STATE_TRANSITION = "InvalidStateTransition"
INVALID_REQUEST_ID = "InvalidRequestID"
REQUEST_ENTITY_TOO_LARGE = "RequestEntityTooLarge"
INVALID_RESPONSE_MODE = "InvalidFunctionResponseMode"
NOT_FOUND = "NotFound"
METHOD_NOT_ALLOWED = "MethodNotAllowed"

# Invocation failures the platform reports itself (reference section 6, "platform-generated").
SANDBOX_TIMEDOUT = "Sandbox.Timedout"
RUNTIME_EXIT_ERROR = "Runtime.ExitError"
RUNTIME_INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"
RUNTIME_OUT_OF_MEMORY = "Runtime.OutOfMemory"  # REPORT/telemetry only; the invoker sees Runtime.ExitError
RUNTIME_UNKNOWN = "Runtime.Unknown"
# A streamed response whose connection closed before its body ended (AWS's emulator: fatalerror).
RUNTIME_TRUNCATED_RESPONSE = "Runtime.TruncatedResponse"
FUNCTION_UNKNOWN = "Function.Unknown"
FUNCTION_RESPONSE_SIZE_TOO_LARGE = "Function.ResponseSizeTooLarge"
# Extensions API 2020-01-01 and Telemetry API 2022-07-01 (extensions/): the platform's types for an
# extension's failure (REPORT/INIT_REPORT and the invoker's body), then the APIs' own refusals.
EXTENSION_CRASH = "Extension.Crash"
EXTENSION_LAUNCH_ERROR = "Extension.LaunchError"
EXTENSION_INVALID_NAME = "Extension.InvalidExtensionName"
EXTENSION_REGISTRATION_CLOSED = "Extension.RegistrationClosed"
EXTENSION_TOO_MANY = "Extension.TooManyExtensions"
EXTENSION_INVALID_EVENT_TYPE = "Extension.InvalidEventType"
EXTENSION_INVALID_STATE = "Extension.InvalidExtensionState"
EXTENSION_MISSING_ID = "Extension.MissingExtensionIdentifier"
EXTENSION_INVALID_ID = "Extension.InvalidExtensionIdentifier"
EXTENSION_UNKNOWN = "Extension.Unknown"
EXTENSION_MISSING_ERROR_TYPE = "Extension.MissingFunctionErrorType"
TELEMETRY_INVALID_REQUEST = "Telemetry.InvalidRequest"
TELEMETRY_CONFLICT = "Telemetry.Conflict"
LOGS_INVALID_REQUEST = "Logs.InvalidRequest"

# Invoke API service errors (reference section 2): the code goes in `x-amzn-ErrorType`.
RESOURCE_NOT_FOUND = "ResourceNotFoundException"
INVALID_PARAMETER_VALUE = "InvalidParameterValueException"
INVALID_REQUEST_CONTENT = "InvalidRequestContentException"
REQUEST_TOO_LARGE = "RequestEntityTooLargeException"
SERVICE_EXCEPTION = "ServiceException"
TOO_MANY_REQUESTS = "TooManyRequestsException"
UNKNOWN_OPERATION = "UnknownOperationException"
PRECONDITION_FAILED = "PreconditionFailedException"  # a stale RevisionId (412)
RECURSIVE_INVOCATION = "RecursiveInvocationException"  # recursion.py: a chain that loops
VALIDATION = "ValidationException"  # the request validation's (not in botocore's model: a plain ClientError)


class ServiceError(Exception):
    """An Invoke API request refused before anything ran: rendered as `x-amzn-ErrorType` + JSON body."""

    def __init__(self, status: int, code: str, message: str, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason  # `Reason` of a TooManyRequestsException


def shutting_down(grace_s: float | None = None) -> ServiceError:
    """An invoke the server, stopping, will not run (or, past the grace period `grace_s`, not finish):
    503, which SDKs retry, with the reason in the message."""
    message = "The server is shutting down"
    if grace_s is not None:
        message += f": the invoke did not finish within the {grace_s:.1f} s grace period"
    return ServiceError(503, SERVICE_EXCEPTION, message)


def stale_revision(given: object, current: str) -> ServiceError:
    """A `RevisionId` precondition that no longer holds: 412, as the service answers every update."""
    return ServiceError(
        412,
        PRECONDITION_FAILED,
        f"RevisionId: {given!r} does not match the latest RevisionId ({current}). Call GetFunction or "
        "GetAlias to retrieve the latest RevisionId for your resource.",
    )


# RAPID keeps a header value that *contains* a well-formed type anywhere (its pattern is unanchored).
_VALID_ERROR_TYPE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")


def normalise_function_error_type(value: str | None) -> str | None:
    """What RAPID keeps of `Lambda-Runtime-Function-Error-Type`: the value as sent when it contains
    `Runtime.Xx...`/`Function.Xx...`, else `Runtime.Unknown` (`Function.Unknown` if so prefixed)."""
    if not value:
        return None
    if _VALID_ERROR_TYPE.search(value):
        return value
    return FUNCTION_UNKNOWN if value.startswith("Function.") else RUNTIME_UNKNOWN
