"""ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) as kube-apiserver applies
it to a write, for the subset batchctl ships (batchctl/access.py):

- a policy's `matchConstraints.resourceRules` (apiGroups, apiVersions, operations,
  resources) and `objectSelector.matchLabels`; its `matchConditions` (all true, or the
  policy does not apply); its `variables`, each evaluated in order and readable by the
  later ones as `variables.NAME`; its `validations` (`expression`, `message`, `reason`);
  `failurePolicy: Fail` (an expression that errors denies);
- a binding's `policyName`, `validationActions: [Deny]` and
  `matchResources.namespaceSelector.matchLabels` on the label the apiserver gives every
  namespace, `kubernetes.io/metadata.name` (the fake has no Namespace objects);
- CEL over `object`, `oldObject` (null on CREATE), `request.userInfo` and `authorizer`
  (`authorizer.group(G).resource(R).namespace(NS).name(N).check(VERB).allowed()`,
  answered by the fake's RBAC), evaluated by cel-python, which implements the CEL
  standard; Kubernetes' own CEL libraries beyond the authorizer are not provided.

A denial is the apiserver's: HTTP 403 for reason Forbidden, 422 for Invalid (the
default), message "ValidatingAdmissionPolicy 'P' with binding 'B' denied request: M".
Anything else in a policy (paramKind, auditAnnotations, messageExpression, other
selectors) is refused at load, so a test cannot believe a rule ran that did not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes

from tests.support.fakekube.auth import Attributes, UserInfo
from tests.support.fakekube.errors import ApiError
from tests.support.fakekube.routes import JSON

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
REASON_CODES = {"Forbidden": 403, "Invalid": 422, "Unauthorized": 401, "RequestEntityTooLarge": 413}
_POLICY_KEYS = {"failurePolicy", "matchConstraints", "matchConditions", "variables", "validations"}
_BINDING_KEYS = {"policyName", "validationActions", "matchResources"}


@dataclass(frozen=True)
class Write:
    """One write as admission sees it."""

    operation: str  # CREATE, UPDATE
    group: str
    version: str
    resource: str
    namespace: str
    obj: JSON
    old: JSON | None
    user: UserInfo


def _refuse_unknown(kind: str, spec: JSON, known: set[str]) -> None:
    extra = set(spec) - known
    if extra:
        raise ValueError(f"the fake does not implement {kind} fields {sorted(extra)}")


def _null_aware(op: Callable[[Any, Any], Any], differ: bool) -> Callable[[Any, Any], Any]:
    """CEL's equality with null as cel-go (Kubernetes) has it: any value compared with
    null is simply unequal (cel-python 0.5 raises "no such overload" for a map or an int
    against null, which would make the idiom `oldObject != null` an error)."""

    def f(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return celtypes.BoolType((a is None and b is None) != differ)
        return op(a, b)

    return f


NULL_EQUALITY = {
    "_==_": _null_aware(celpy.evaluation.bool_eq, differ=False),
    "_!=_": _null_aware(celpy.evaluation.bool_ne, differ=True),
}


def _authorizer_functions(allows: Callable[[Attributes], bool]) -> dict[str, Any]:
    """Kubernetes' authorizer library as CEL member functions: each step records one
    attribute; check(VERB) asks RBAC; allowed() reads the answer."""

    def step(key: str) -> Callable[[Any, Any], Any]:
        def f(target: Any, arg: Any) -> Any:
            return celtypes.MapType({**target, celtypes.StringType(key): arg})

        return f

    def check(target: Any, verb: Any) -> Any:
        got = {str(k): str(v) for k, v in target.items()}
        a = Attributes(
            str(verb), got.get("group", ""), got.get("resource", ""), got.get("name"),
            got.get("namespace"),
        )  # fmt: skip
        return celtypes.MapType({celtypes.StringType("allowed"): celtypes.BoolType(allows(a))})

    return {
        **NULL_EQUALITY,
        "group": step("group"),
        "resource": step("resource"),
        "namespace": step("namespace"),
        "name": step("name"),
        "check": check,
        "allowed": lambda target: target[celtypes.StringType("allowed")],
    }


class AdmissionPolicies:
    """The policies and bindings loaded (FakeKube.apply_admission); checks each write."""

    def __init__(self) -> None:
        self.policies: dict[str, JSON] = {}
        self.bindings: list[JSON] = []
        self._env = celpy.Environment()

    def load(self, docs: list[JSON]) -> None:
        for doc in docs:
            spec = doc.get("spec") or {}
            if doc.get("kind") == "ValidatingAdmissionPolicy":
                _refuse_unknown("ValidatingAdmissionPolicy", spec, _POLICY_KEYS)
                for v in spec.get("validations") or []:
                    _refuse_unknown("validation", v, {"expression", "message", "reason"})
                self.policies[doc["metadata"]["name"]] = spec
            elif doc.get("kind") == "ValidatingAdmissionPolicyBinding":
                _refuse_unknown("ValidatingAdmissionPolicyBinding", spec, _BINDING_KEYS)
                if spec.get("validationActions") != ["Deny"]:
                    raise ValueError("the fake implements validationActions [Deny] only")
                self.bindings.append({"name": doc["metadata"]["name"], **spec})

    def check(self, w: Write, allows: Callable[[Attributes], bool]) -> None:
        """Raise the apiserver's denial when a bound policy that matches `w` says no."""
        for binding in self.bindings:
            policy = self.policies.get(binding["policyName"])
            if policy is None or not _binding_matches(binding, w) or not _matches(policy, w):
                continue
            env = _activation(w)
            functions = _authorizer_functions(allows)
            try:
                if not all(self._eval(c["expression"], env, functions)
                           for c in policy.get("matchConditions") or []):  # fmt: skip
                    continue
                variables: dict[Any, Any] = {}
                for v in policy.get("variables") or []:
                    env["variables"] = celtypes.MapType(variables)
                    variables[celtypes.StringType(v["name"])] = self._eval(
                        v["expression"], env, functions
                    )
                env["variables"] = celtypes.MapType(variables)
                failed = next(
                    (c for c in policy.get("validations") or []
                     if not self._eval(c["expression"], env, functions)),
                    None,
                )  # fmt: skip
            except celpy.CELEvalError as e:
                # failurePolicy Fail: an expression that cannot be evaluated denies.
                failed = {"message": str(e.args[0]), "reason": "Invalid"}
            if failed is not None:
                reason = failed.get("reason") or "Invalid"
                raise ApiError(
                    REASON_CODES[reason],
                    reason,
                    f"ValidatingAdmissionPolicy '{binding['policyName']}' with binding "
                    f"'{binding['name']}' denied request: {failed.get('message', '')}",
                )

    def _eval(self, expression: str, env: dict[str, Any], functions: dict[str, Any]) -> Any:
        program = self._env.program(self._env.compile(expression), functions=functions)
        try:
            result = program.evaluate(env)
        except celpy.CELEvalError as e:
            raise celpy.CELEvalError(f"expression '{expression}' resulted in error: {e}") from e
        if isinstance(result, celpy.CELEvalError):
            raise celpy.CELEvalError(f"expression '{expression}' resulted in error: {result}")
        return result


def _typed(value: Any) -> Any:
    """A JSON object as the apiserver decodes it into its typed form: a null field is an
    unset one (so CEL's has() is false for it, as on a real cluster)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return value


def _activation(w: Write) -> dict[str, Any]:
    return {
        "object": celpy.json_to_cel(_typed(w.obj)),
        "oldObject": celpy.json_to_cel(_typed(w.old)) if w.old is not None else None,
        "request": celpy.json_to_cel({"userInfo": w.user.to_json(), "operation": w.operation}),
        "authorizer": celtypes.MapType({}),
    }


def _in(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)  # type: ignore[operator]


def _matches(policy: JSON, w: Write) -> bool:
    constraints = policy.get("matchConstraints") or {}
    _refuse_unknown("matchConstraints", constraints, {"resourceRules", "objectSelector"})
    rule_ok = any(
        _in(r.get("apiGroups"), w.group)
        and _in(r.get("apiVersions"), w.version)
        and _in(r.get("operations"), w.operation)
        and _in(r.get("resources"), w.resource)
        for r in constraints.get("resourceRules") or []
    )
    selector = constraints.get("objectSelector") or {}
    _refuse_unknown("objectSelector", selector, {"matchLabels"})
    labels = (w.obj.get("metadata") or {}).get("labels") or {}
    old_labels = ((w.old or {}).get("metadata") or {}).get("labels") or {}
    wanted = selector.get("matchLabels") or {}
    # The apiserver matches the object selector against the new or the old object.
    label_ok = all(labels.get(k) == v for k, v in wanted.items()) or (
        w.old is not None and all(old_labels.get(k) == v for k, v in wanted.items())
    )
    return rule_ok and label_ok


def _binding_matches(binding: JSON, w: Write) -> bool:
    resources = binding.get("matchResources") or {}
    _refuse_unknown("matchResources", resources, {"namespaceSelector"})
    selector = resources.get("namespaceSelector") or {}
    _refuse_unknown("namespaceSelector", selector, {"matchLabels"})
    labels = {NAMESPACE_NAME_LABEL: w.namespace}
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
