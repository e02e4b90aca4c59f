"""Every failure of the HTTP API as an OpenAI-shaped error with a 4xx/5xx status.

``{"error": {"message", "type", "param", "code"}}`` is what the official clients parse, so
a bad request surfaces in them as the matching exception (`BadRequestError`,
`AuthenticationError`, `NotFoundError`, ...). Nothing here lets a bad request take the
server down: validation, lethe and unexpected errors all end as a JSON response.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lethe.errors import ConflictError, InputError, LetheError, NotFoundError

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error raised by the API itself (authentication, limits), with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, type, param, code), status_code=status)


_LETHE_STATUS: list[tuple[type[LetheError], int, str, str | None]] = [
    (NotFoundError, 404, "invalid_request_error", "not_found"),
    (ConflictError, 409, "invalid_request_error", "conflict"),
    (InputError, 400, "invalid_request_error", None),
]


def lethe_error_response(error: LetheError) -> JSONResponse:
    param = error.where.field if error.where is not None else None
    for kind, status, type_, code in _LETHE_STATUS:
        if isinstance(error, kind):
            if kind is NotFoundError and param == "model":
                code = "model_not_found"
            return error_response(status, error.message, type_, param, code)
    return error_response(400, error.message, "invalid_request_error", param)


_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _field_path(loc) -> list[str]:
    """The request field a pydantic location points at, without pydantic's union tags."""
    path = []
    for part in loc:
        if part == "body":
            continue
        if isinstance(part, int):
            path.append(str(part))
        elif _FIELD_NAME.match(part) and part not in _TYPE_TAGS:
            path.append(part)
        else:
            break  # `function-after[...]`, `list[ContentPart]`: which union member failed
    return path


def _validation_response(error: RequestValidationError) -> JSONResponse:
    problems = error.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, "the request body is not valid JSON", code="invalid_json")
    unknown = [".".join(_field_path(p.get("loc", ()))) for p in problems]
    unknown = [name for name, p in zip(unknown, problems) if p.get("type") == "extra_forbidden"]
    if unknown:
        return error_response(
            400,
            f"unrecognized request argument(s) supplied: {', '.join(unknown)}",
            param=unknown[0],
            code="unknown_field",
        )
    first = problems[0] if problems else {}
    location = _field_path(first.get("loc", ()))
    param = ".".join(location) or None
    message = first.get("msg", "invalid request")
    named = (first.get("ctx") or {}).get("field") if first.get("type") == "invalid_field" else None
    if named:
        param = ".".join([*location, named]) if location else named
    elif param:
        message = f"{param}: {message}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return error_response(400, message, param=param, code="invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` OpenAI-shaped."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_response(error)

    @app.exception_handler(LetheError)
    async def _lethe(_: Request, error: LetheError) -> JSONResponse:
        return lethe_error_response(error)

    @app.exception_handler(APIError)
    async def _api(_: Request, error: APIError) -> JSONResponse:
        return error_response(error.status, error.message, error.type, error.param, error.code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 413:
            return error_response(413, str(error.detail), code="request_too_large")
        type_ = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        return error_response(error.status_code, str(error.detail), type_)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error in the API")
        return error_response(500, f"internal error: {type(error).__name__}", "api_error")
