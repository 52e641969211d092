"""Bedrock's errors: HTTP errors (``x-amzn-ErrorType`` and ``{"message": ...}``) and the
exception messages of a stream, named as the ``bedrock-runtime`` service model names them
(botocore ``data/bedrock-runtime/2023-09-30/service-2.json``: each error shape's
``error.httpStatusCode``; the stream unions' exception members).

botocore reads an HTTP error's code from ``x-amzn-ErrorType`` (the part before ``:``;
``RestJSONParser._inject_error_code``) and its message from the body's ``message``; it reads a
stream exception's code from the ``:exception-type`` header (``_do_error_parse``).
"""

from __future__ import annotations

from ..encoder import dumps
from ..events import StreamError

#: HTTP status → (exception, its usual message), per the service model's ``httpStatusCode``.
HTTP_ERRORS = {
    400: ("ValidationException", "The request is invalid."),
    401: ("UnrecognizedClientException", "The security token included in the request is invalid."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    413: ("ValidationException", "The request body is too large."),
    424: ("ModelErrorException", "The model returned an error."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: (
        "InternalServerException",
        "The server encountered an internal error while processing the request.",
    ),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
#: Every exception a Bedrock HTTP error may name (an ``error_event`` or a scripted body may use one).
KNOWN = frozenset(
    {kind for kind, _ in HTTP_ERRORS.values()}
    | {
        "ModelStreamErrorException",
        "ModelNotReadyException",
        "ServiceQuotaExceededException",
        "UnknownOperationException",
    }
)
#: The botocore docs' namespace suffix of ``x-amzn-ErrorType``, as the real service sends it.
NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"


def http_error(status: int) -> tuple[str, str]:
    """(exception, message) of an HTTP status: its own, else ValidationException for a 4xx and
    InternalServerException for a 5xx."""
    return HTTP_ERRORS.get(status) or HTTP_ERRORS[400 if status < 500 else 500]


def http_exception(status: int, type: str | None) -> str:
    """The exception an HTTP error names: ``type`` if it is Bedrock's own (``ThrottlingException``,
    or as a stream names it, ``throttlingException``), else the status's."""
    if type:
        pascal = type[:1].upper() + type[1:]
        if pascal in KNOWN:
            return pascal
    return http_error(status)[0]


def stream_exception(error: StreamError) -> str:
    """The stream member an ``error_event`` becomes: a Bedrock exception named by its ``type``
    (either case), ``throttlingException`` for a rate-limit type, ``validationException`` for an
    invalid-request type, else ``modelStreamErrorException`` (an error of the model's stream).
    The error's ``event`` (an SSE event name) has no meaning here."""
    kind = error.type or ""
    camel = kind[:1].lower() + kind[1:]
    if camel.endswith("Exception"):
        return camel
    lowered = kind.lower()
    if "rate" in lowered or "throttl" in lowered or "quota" in lowered:
        return "throttlingException"
    if "invalid" in lowered or "validation" in lowered:
        return "validationException"
    return "modelStreamErrorException"


def exception_payload(error: StreamError) -> tuple[str, bytes]:
    """The stream member and payload of an in-stream error (the exception shapes have a
    ``message``; ``modelStreamErrorException`` also ``originalStatusCode`` when the scenario's
    ``code`` is a number)."""
    member = stream_exception(error)
    body: dict[str, object] = {"message": error.message}
    if member == "modelStreamErrorException" and isinstance(error.code, int):
        body["originalStatusCode"] = error.code
    return member, dumps(body).encode()
