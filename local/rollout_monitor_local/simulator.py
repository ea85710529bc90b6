"""A Cerebras Management API simulator: the documented routes, scripted rollouts, faults.

The same ASGI app runs in-process (``httpx.ASGITransport``) and on loopback (uvicorn).
Rollouts follow a :class:`Scenario` chosen per deployment by the version's alias (each
scenario's name is an alias of a seeded version) or by :attr:`Simulator.default_scenario`.
Its clock is injectable, so tests move a rollout forward without sleeping.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rollout_monitor.cerebras.names import VERSION_ALIAS
from rollout_monitor_local.clock import Clock, SystemClock

DEFAULT_KEY = "sim-management-key"
DEFAULT_ORG = "my-org"
PREFIX = "/management/v1"
DEPLOYMENT_ROUTE = PREFIX + "/endpoints/{endpoint_id}/deployments/{deployment_id}"
_VERSION_NAME = re.compile(r"^orgs/([^/]+)/models/([^/]+)/versions/([^/]+)$")


@dataclass(frozen=True, slots=True)
class Step:
    """From ``at`` seconds after submission, the rollout reports this."""

    at: float
    status: str
    updated_replicas: int
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    total_replicas: int = 4
    listed: bool = True  # False: the endpoint never lists the deployment

    def at(self, elapsed: float) -> Step:
        current = self.steps[0]
        for step in self.steps:
            if step.at <= elapsed:
                current = step
        return current

    @property
    def duration(self) -> float:
        return self.steps[-1].at


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "succeeds",
            (
                Step(0, "not_started", 0),
                Step(20, "in_progress", 1),
                Step(40, "in_progress", 2),
                Step(60, "in_progress", 3),
                Step(80, "done", 4),
            ),
        ),
        Scenario(
            "errors",
            (
                Step(0, "not_started", 0),
                Step(20, "in_progress", 1),
                Step(40, "error", 1, "replica 2 failed health check: CUDA-free OOM while loading"),
            ),
        ),
        Scenario(
            "rolls-back",
            (
                Step(0, "not_started", 0),
                Step(20, "in_progress", 2),
                Step(40, "rolling_back", 1, "latency SLO breached on new replicas"),
                Step(60, "rolled_back", 0, "latency SLO breached on new replicas"),
            ),
        ),
        Scenario(
            "cancelled",
            (Step(0, "not_started", 0), Step(20, "in_progress", 1), Step(40, "cancelled", 1)),
        ),
        Scenario("stalls", (Step(0, "not_started", 0), Step(20, "in_progress", 1))),
        Scenario("fails-at-once", (Step(0, "error", 0, "image pull failed: no such version"),)),
        Scenario("invisible", (Step(0, "not_started", 0),), listed=False),
    )
}


class FaultKind(StrEnum):
    LATENCY = "latency"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    HANG = "hang"
    MALFORMED = "malformed"
    UNAUTHORIZED = "unauthorized"
    UNPROCESSABLE = "unprocessable"


@dataclass(slots=True)
class Fault:
    """Served instead of (or, for latency, before) the real answer, ``times`` times."""

    kind: FaultKind
    times: int = 1
    path_contains: str = ""
    seconds: float = 0.5  # latency and hang length; Retry-After for rate_limit

    def matches(self, path: str) -> bool:
        return self.times > 0 and self.path_contains in path


@dataclass(slots=True)
class Deployment:
    id: str
    endpoint_id: str
    model: str
    version_id: int
    version_alias: str | None
    scenario: Scenario
    created: int


@dataclass(slots=True)
class Endpoint:
    endpoint_id: str
    org_name: str
    model_arch_id: str
    created: int
    deployments: list[Deployment] = field(default_factory=list)


@dataclass(slots=True)
class Version:
    version_id: int
    aliases: list[str]
    customer_s3_uri: str


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    authorization: str | None
    body: bytes


class Simulator:
    """State and behaviour; :attr:`app` serves it."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        clock: Clock | None = None,
        default_scenario: str = "succeeds",
        org_name: str = DEFAULT_ORG,
    ) -> None:
        self.api_key = api_key
        self.clock = clock or SystemClock()
        self.default_scenario = default_scenario
        # The real API's quirks, for the fault tests: a new deployment is listed by its
        # endpoint only after `listing_delay` seconds, and `created` is stamped by a clock
        # `clock_offset` seconds off ours.
        self.listing_delay = 0.0
        self.clock_offset = 0.0
        self.org_name = org_name
        self.requests: deque[LoggedRequest] = deque(maxlen=10_000)
        self.faults: list[Fault] = []
        self.endpoints: dict[str, Endpoint] = {}
        self.versions: dict[tuple[str, str], dict[int, Version]] = {}
        self._lock = threading.Lock()
        self._uuids = (
            uuid.UUID(int=n) for n in itertools.count(0x550E8400_E29B_41D4_A716_4466554400A0)
        )
        for arch in ("llama-3.3-70b", "qwen-3-32b"):
            self.add_endpoint(f"{org_name}-{arch}", arch)
        self.app = Starlette(routes=self._routes())

    # -- set-up API for tests and the local stack ---------------------------------------------

    def add_endpoint(self, endpoint_id: str, model_arch_id: str) -> Endpoint:
        now = int(self.clock.now())
        endpoint = Endpoint(endpoint_id, self.org_name, model_arch_id, now)
        with self._lock:
            self.endpoints[endpoint_id] = endpoint
            if (self.org_name, model_arch_id) not in self.versions:
                self.versions[(self.org_name, model_arch_id)] = {
                    n: Version(n, [name], f"s3://sim-weights/{model_arch_id}/{name}")
                    for n, name in enumerate(SCENARIOS, start=1)
                }
        return endpoint

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def count(self, method: str | None = None, path_contains: str = "") -> int:
        return sum(
            1
            for r in list(self.requests)
            if (method is None or r.method == method) and path_contains in r.path
        )

    def deployment(self, deployment_id: str) -> Deployment:
        for endpoint in self.endpoints.values():
            for deployment in endpoint.deployments:
                if deployment.id == deployment_id:
                    return deployment
        raise KeyError(deployment_id)

    # -- what a deployment looks like now ----------------------------------------------------

    def metadata(self, deployment: Deployment) -> dict[str, Any]:
        step = self._step(deployment)
        endpoint = self.endpoints[deployment.endpoint_id]
        body: dict[str, Any] = {
            "deployment_id": deployment.id,
            "endpoint_id": deployment.endpoint_id,
            "org_name": endpoint.org_name,
            "model_arch_id": endpoint.model_arch_id,
            "version_id": deployment.version_id,
            "created": deployment.created,
            "updated": int(deployment.created + step.at),
            "rollout_status": step.status,
            "requested_version": deployment.model,
            "max_unavailable": 1,
            "updated_replicas": step.updated_replicas,
            "total_replicas": deployment.scenario.total_replicas,
        }
        if step.error_message is not None:
            body["error_message"] = step.error_message
        return body

    def _step(self, deployment: Deployment) -> Step:
        return deployment.scenario.at(self._now() - deployment.created)

    def _now(self) -> float:
        """The simulated Cerebras's own clock."""
        return self.clock.now() + self.clock_offset

    def _listed(self, deployment: Deployment) -> bool:
        return deployment.scenario.listed and (
            self._now() >= deployment.created + self.listing_delay
        )

    def _deployed_model(self, deployment: Deployment) -> dict[str, Any]:
        step = self._step(deployment)
        entry: dict[str, Any] = {
            "id": deployment.id,
            "model": deployment.model.rpartition("/versions/")[0]
            + f"/versions/{deployment.version_id}",
            "version_alias": deployment.version_alias,
            "created": deployment.created,
            # The only published value is "complete"; the rest are served as rollout statuses.
            "state": "complete" if step.status == "done" else step.status,
            "updated_replicas": step.updated_replicas,
            "total_replicas": deployment.scenario.total_replicas,
        }
        if step.error_message is not None:
            entry["error_message"] = step.error_message
        return entry

    # -- HTTP ------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            Route(PREFIX + "/endpoints/{endpoint_id}:deployModel", self._deploy, methods=["POST"]),
            Route(PREFIX + "/endpoints/{endpoint_id}/deployments/{deployment_id}", self._status),
            Route(PREFIX + "/endpoints/{endpoint_id}", self._endpoint),
            Route(PREFIX + "/orgs/{org}/endpoints", self._list_endpoints),
            Route(PREFIX + "/orgs/{org}/models/{arch}/versions/{version}", self._version),
            Route(PREFIX + "/orgs/{org}/models/{arch}/versions", self._versions),
            Route(PREFIX + "/orgs/{org}/models", self._architectures),
        ]

    async def _guard(self, request: Request) -> Response | None:
        """Log, apply faults, check auth. A response here is served instead of the route."""
        body = await request.body()
        path = request.url.path
        self.requests.append(
            LoggedRequest(request.method, path, request.headers.get("authorization"), body)
        )
        fault = self._take_fault(path)
        if fault is not None:
            if fault.kind in {FaultKind.LATENCY, FaultKind.HANG}:
                await asyncio.sleep(fault.seconds)
            if fault.kind != FaultKind.LATENCY:
                return _fault_response(fault)
        supplied = request.headers.get("authorization", "")
        expected = f"Bearer {self.api_key}"
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            return _error(401, "invalid or missing management API key")
        return None

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(path):
                    fault.times -= 1
                    return fault
        return None

    async def _deploy(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        endpoint = self.endpoints.get(request.path_params["endpoint_id"])
        if endpoint is None:
            return _error(404, f"endpoint {request.path_params['endpoint_id']} not found")
        found = await self._version_to_deploy(request, endpoint)
        if isinstance(found, Response):
            return found
        version, model = found
        deployment = self._start(endpoint, version, model)
        metadata = self.metadata(deployment)
        return JSONResponse({"name": deployment.id, "done": False, "response": metadata})

    def start_from_console(self, endpoint_id: str, scenario: str) -> Deployment:
        """A rollout started outside the monitor (the Cerebras console, a script, another
        team's pipeline): no request reaches the API's deployModel as the monitor sends it."""
        endpoint = self.endpoints[endpoint_id]
        version = next(
            v
            for v in self.versions[(endpoint.org_name, endpoint.model_arch_id)].values()
            if scenario in v.aliases
        )
        model = f"orgs/{endpoint.org_name}/models/{endpoint.model_arch_id}/versions/{scenario}"
        return self._start(endpoint, version, model)

    def _start(self, endpoint: Endpoint, version: Version, model: str) -> Deployment:
        requested = model.rsplit("/", 1)[-1]
        with self._lock:
            scenario_name = next(
                (alias for alias in version.aliases if alias in SCENARIOS), self.default_scenario
            )
            deployment = Deployment(
                id=str(next(self._uuids)),
                endpoint_id=endpoint.endpoint_id,
                model=model,
                version_id=version.version_id,
                version_alias=None if requested.isdigit() else requested,
                scenario=SCENARIOS[scenario_name],
                created=int(self.clock.now() + self.clock_offset),
            )
            endpoint.deployments.append(deployment)
        return deployment

    async def _version_to_deploy(
        self, request: Request, endpoint: Endpoint
    ) -> tuple[Version, str] | Response:
        """The version a deployModel body names, or the error the API would answer."""
        model = _model_of(await request.body())
        if isinstance(model, Response):
            return model
        org, arch, version = model.split("/")[1::2]
        if org != endpoint.org_name or arch != endpoint.model_arch_id:
            status = 403 if org != endpoint.org_name else 400
            return _error(status, f"{model} cannot be deployed to {endpoint.endpoint_id}")
        found = self._resolve(org, arch, version)
        if found is None:
            return _error(404, f"model version {model} not found")
        return found, model

    def _resolve(self, org: str, arch: str, version: str) -> Version | None:
        versions = self.versions.get((org, arch), {})
        if version.isdigit():
            return versions.get(int(version))
        if not VERSION_ALIAS.fullmatch(version):
            return None
        return next((v for v in versions.values() if version in v.aliases), None)

    async def _status(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        try:
            deployment = self.deployment(request.path_params["deployment_id"])
        except KeyError:
            return _error(404, "deployment not found")
        metadata = self.metadata(deployment)
        done = self._step(deployment).status in {"done", "error", "rolled_back", "cancelled"}
        return JSONResponse({"name": deployment.id, "done": done, "response": metadata})

    async def _endpoint(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        endpoint = self.endpoints.get(request.path_params["endpoint_id"])
        if endpoint is None:
            return _error(404, f"endpoint {request.path_params['endpoint_id']} not found")
        listed = [d for d in endpoint.deployments if self._listed(d)]
        updated = max([endpoint.created] + [d.created for d in listed])
        return JSONResponse(
            {
                "name": endpoint.endpoint_id,
                "model_arch_id": endpoint.model_arch_id,
                "deployed_models": [self._deployed_model(d) for d in listed],
                "managing_org_name": endpoint.org_name,
                "created": endpoint.created,
                "updated": updated,
            }
        )

    async def _list_endpoints(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        org = request.path_params["org"]
        return JSONResponse(
            {
                "endpoints": [
                    {
                        "endpoint_id": e.endpoint_id,
                        "model_arch_id": e.model_arch_id,
                        "created": e.created,
                        "updated": e.created,
                        "org_name": e.org_name,
                    }
                    for e in self.endpoints.values()
                    if e.org_name == org
                ]
            }
        )

    def _version_body(self, org: str, arch: str, version: Version) -> dict[str, Any]:
        return {
            "name": f"orgs/{org}/models/{arch}/versions/{version.version_id}",
            "done": True,
            "response": {
                "customer_s3_uri": version.customer_s3_uri,
                "version_aliases": version.aliases,
                "sync_status": "done",
            },
        }

    async def _version(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        org, arch = request.path_params["org"], request.path_params["arch"]
        found = self._resolve(org, arch, request.path_params["version"])
        if found is None:
            return _error(404, "model version not found")
        return JSONResponse(self._version_body(org, arch, found))

    async def _versions(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        org, arch = request.path_params["org"], request.path_params["arch"]
        versions = self.versions.get((org, arch), {}).values()
        return JSONResponse(
            {"model_versions": [self._version_body(org, arch, v) for v in versions]}
        )

    async def _architectures(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        org = request.path_params["org"]
        return JSONResponse(
            {"model_architectures": sorted(a for o, a in self.versions if o == org)}
        )


def _model_of(body: bytes) -> str | Response:
    """The ``model`` of a deployModel body, or the 422 the API would answer."""
    try:
        payload = json.loads(body)
    except ValueError:
        return _unprocessable(["body"], "body is not valid JSON", "json_invalid")
    model = payload.get("model") if isinstance(payload, dict) else None
    if not isinstance(model, str) or _VERSION_NAME.fullmatch(model) is None:
        return _unprocessable(["body", "model"], "invalid model version name", "value_error")
    return model


def _fault_response(fault: Fault) -> Response:
    """What a fault serves instead of the route's answer."""
    if fault.kind == FaultKind.RATE_LIMIT:
        return JSONResponse(
            {"detail": "rate limit exceeded for organization"},
            status_code=429,
            headers={"Retry-After": f"{fault.seconds:g}"},
        )
    if fault.kind == FaultKind.MALFORMED:
        return Response(b'{"name": "truncated', media_type="application/json")
    if fault.kind == FaultKind.UNPROCESSABLE:
        return _unprocessable(["body", "model"], "version is not deployable", "value_error")
    status, detail = _FAULT_ERRORS[fault.kind]
    return _error(status, detail)


_FAULT_ERRORS = {
    FaultKind.HANG: (504, "hung response ended"),
    FaultKind.SERVER_ERROR: (500, "internal server error"),
    FaultKind.UNAVAILABLE: (503, "service unavailable"),
    FaultKind.UNAUTHORIZED: (401, "invalid API key"),
}


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _unprocessable(loc: list[str], msg: str, kind: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": kind}]}, status_code=422)
