"""A Cerebras Management API simulator: the documented routes, scripted rollouts, faults.

The same ASGI app runs in-process (``httpx.ASGITransport``) and on loopback (uvicorn).
Rollouts follow a :class:`Scenario` chosen per deployment by the version's alias (each
scenario's name is an alias of a seeded version) or by :attr:`Simulator.default_scenario`.
An uploaded version syncs by a :class:`SyncScenario` named by one of its aliases or in its
weight URI, else by :attr:`Simulator.default_sync`; deploying it before it is synced fails at once.
Its clock is injectable, so tests move a rollout or a sync forward without sleeping.
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
from collections.abc import Sequence
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
        return _latest(self.steps, elapsed)

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


@dataclass(frozen=True, slots=True)
class SyncStep:
    """From ``at`` seconds after upload, the version reports this ``sync_status``."""

    at: float
    sync_status: str


@dataclass(frozen=True, slots=True)
class SyncScenario:
    name: str
    steps: tuple[SyncStep, ...]

    def at(self, elapsed: float) -> SyncStep:
        return _latest(self.steps, elapsed)


SYNC_SCENARIOS: dict[str, SyncScenario] = {
    s.name: s
    for s in (
        SyncScenario(
            "syncs",
            (SyncStep(0, "queued"), SyncStep(10, "in_progress"), SyncStep(30, "done")),
        ),
        SyncScenario(
            "sync-fails",
            (SyncStep(0, "queued"), SyncStep(10, "in_progress"), SyncStep(20, "failed")),
        ),
        SyncScenario("sync-stalls", (SyncStep(0, "queued"), SyncStep(10, "in_progress"))),
        SyncScenario("synced", (SyncStep(0, "done"),)),
    )
}


def _latest[S: (Step, SyncStep)](steps: tuple[S, ...], elapsed: float) -> S:
    """The last step reached ``elapsed`` seconds in (the first one before that)."""
    current = steps[0]
    for step in steps:
        if step.at <= elapsed:
            current = step
    return current


class FaultKind(StrEnum):
    LATENCY = "latency"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    HANG = "hang"
    MALFORMED = "malformed"
    UNAUTHORIZED = "unauthorized"
    UNPROCESSABLE = "unprocessable"
    NOT_FOUND = "not_found"


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
    created: float
    sync: SyncScenario

    def sync_status(self, now: float) -> str:
        return self.sync.at(now - self.created).sync_status


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
        default_sync: str = "syncs",
        org_name: str = DEFAULT_ORG,
    ) -> None:
        self.api_key = api_key
        self.clock = clock or SystemClock()
        self.default_scenario = default_scenario
        self.default_sync = default_sync
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
        synced = SYNC_SCENARIOS["synced"]
        with self._lock:
            self.endpoints[endpoint_id] = endpoint
            if (self.org_name, model_arch_id) not in self.versions:
                self.versions[(self.org_name, model_arch_id)] = {
                    n: Version(n, [name], f"s3://sim-weights/{model_arch_id}/{name}", now, synced)
                    for n, name in enumerate(SCENARIOS, start=1)
                }
        return endpoint

    def upload(
        self,
        org: str,
        arch: str,
        weight_uri: str,
        aliases: Sequence[str] = (),
        sync: str = "syncs",
    ) -> Version:
        """A new version of ``arch``, syncing as ``SYNC_SCENARIOS[sync]`` from now.

        Raises ValueError if another version of ``arch`` already has one of ``aliases``.
        """
        scenario = SYNC_SCENARIOS[sync]
        with self._lock:
            versions = self.versions.setdefault((org, arch), {})
            taken = [a for v in versions.values() for a in v.aliases if a in aliases]
            if taken:
                raise ValueError(f"version alias {taken[0]} is already in use")
            version_id = max(versions, default=0) + 1
            version = Version(version_id, list(aliases), weight_uri, self.clock.now(), scenario)
            versions[version_id] = version
        return version

    def version_status(self, org: str, arch: str, version_id: int) -> str:
        return self.versions[(org, arch)][version_id].sync_status(self.clock.now())

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
            Route(PREFIX + "/orgs/{org}/models:upload", self._upload, methods=["POST"]),
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
        synced = version.sync_status(self.clock.now()) == "done"
        with self._lock:
            scenario_name = next(
                (alias for alias in version.aliases if alias in SCENARIOS), self.default_scenario
            )
            if not synced:  # undocumented: the API takes it, and the rollout errors at once
                scenario_name = "fails-at-once"
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
        sync_status = version.sync_status(self.clock.now())
        return {
            "name": f"orgs/{org}/models/{arch}/versions/{version.version_id}",
            "done": sync_status == "done",
            "response": {
                "customer_s3_uri": version.customer_s3_uri,
                "version_aliases": version.aliases,
                "sync_status": sync_status,
            },
        }

    async def _upload(self, request: Request) -> Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        upload = _upload_of(await request.body())
        if isinstance(upload, Response):
            return upload
        org = request.path_params["org"]
        if org != self.org_name:
            return _error(403, f"no access to organization {org}")
        arch, weight_uri, aliases = upload
        try:
            version = self.upload(org, arch, weight_uri, aliases, self._sync_for(upload))
        except ValueError as exc:
            return _error(409, str(exc))
        return JSONResponse(self._version_body(org, arch, version))

    def _sync_for(self, upload: tuple[str, str, list[str]]) -> str:
        """The sync scenario an alias names, else one the weight URI names, else the default."""
        _, weight_uri, aliases = upload
        named = itertools.chain(
            (a for a in aliases if a in SYNC_SCENARIOS),
            (name for name in SYNC_SCENARIOS if name in weight_uri),
        )
        return next(named, self.default_sync)

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
    payload = _json_of(body)
    if isinstance(payload, Response):
        return payload
    model = payload.get("model") if isinstance(payload, dict) else None
    if not isinstance(model, str) or _VERSION_NAME.fullmatch(model) is None:
        return _unprocessable(["body", "model"], "invalid model version name", "value_error")
    return model


def _upload_of(body: bytes) -> tuple[str, str, list[str]] | Response:
    """The arch, weight URI and aliases of an upload body, or the 422 the API would answer."""
    payload = _json_of(body)
    if isinstance(payload, Response):
        return payload
    fields = payload if isinstance(payload, dict) else {}
    model = fields.get("model")
    model = model if isinstance(model, dict) else {}
    arch, weight_uri = fields.get("model_arch_id"), model.get("weight_uri")
    aliases = model.get("version_aliases", [])
    if not isinstance(arch, str) or not arch:
        return _unprocessable(["body", "model_arch_id"], "a model arch id is required", "missing")
    if not isinstance(weight_uri, str) or not weight_uri:
        loc = ["body", "model", "weight_uri"]
        return _unprocessable(loc, "a weight URI is required", "missing")
    if not isinstance(aliases, list) or not all(
        isinstance(a, str) and VERSION_ALIAS.fullmatch(a) for a in aliases
    ):
        loc = ["body", "model", "version_aliases"]
        return _unprocessable(loc, "invalid version alias", "value_error")
    return arch, weight_uri, aliases


def _json_of(body: bytes) -> object:
    """The decoded body, or the 422 the API answers to one that is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return _unprocessable(["body"], "body is not valid JSON", "json_invalid")


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
    FaultKind.NOT_FOUND: (404, "not found"),
}


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _unprocessable(loc: list[str], msg: str, kind: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": kind}]}, status_code=422)
