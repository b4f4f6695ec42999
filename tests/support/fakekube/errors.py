"""Errors as kube-apiserver answers them: a Status body with its reason and details."""

from __future__ import annotations

from tests.support.fakekube.routes import JSON, KINDS, ROUTE, VERBS


def status_body(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    """A metav1.Status failure, the body of every API error."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, reason, message, details)


def not_found(resource: str, name: str) -> ApiError:
    _, group, _ = KINDS[resource]
    return ApiError(
        404,
        "NotFound",
        f'{resource}.{group} "{name}" not found',
        {"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, name: str) -> ApiError:
    _, group, _ = KINDS[resource]
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource}.{group} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        {"name": name, "group": group, "kind": resource},
    )


def invalid(resource: str, name: str, field_path: str, message: str) -> ApiError:
    kind, group, _ = KINDS[resource]
    return ApiError(
        422,
        "Invalid",
        f'{kind}.{group} "{name}" is invalid: {field_path}: {message}',
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field_path}],
        },
    )


def forbidden_message(method: str, path: str, user: str) -> str:
    """The apiserver's RBAC denial text for a request, naming verb, resource and group."""
    m = ROUTE.match(path)
    if not m:
        return f'forbidden: User "{user}" cannot {method.lower()} path "{path}"'
    resource, name, sub, ns = m["resource"], m["name"], m["sub"], m["ns"]
    verb = VERBS.get(method, method.lower())
    if method == "GET" and not name:
        verb = "list"
    full = f"{resource}/{sub}" if sub else resource
    _, group, _ = KINDS[resource]
    subject = f'{resource}.{group} "{name}"' if name else f"{resource}.{group}"
    where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
    return (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{full}" '
        f'in API group "{group}"{where}'
    )


DEFAULT_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
