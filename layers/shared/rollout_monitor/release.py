"""Releases and waits' ends: one event takes a model from storage to a serving endpoint.

``Release Requested`` is claimed by ``request_id`` like a deploy request (a duplicate gets
the first delivery's result; the same id with other content is refused). Then:

1. ``models:upload``, never sent twice: like ``deployModel``, the claim notes when it was
   sent and which versions were listed before; after an unknown outcome the new version is
   looked for (the same weights, aliases, and not listed before) and adopted, or the
   invocation fails for a retry that looks again and never sends;
2. the version's sync is waited for (:mod:`rollout_monitor.versions`);
3. when the wait ends (``Model Version Sync Changed`` with an outcome), the request is taken
   back from ``waiting`` by one delivery only, and goes through the deploy path
   (:class:`~rollout_monitor.deploy.DeployService`), or is rejected ``version_not_ready``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rollout_monitor.cerebras.errors import (
    CerebrasOutcomeUnknownError,
    CerebrasRefusedError,
    CerebrasTransientError,
)
from rollout_monitor.cerebras.models import ModelVersionOperation
from rollout_monitor.deploy import DeployResult, DeployService, RequestInProgressError
from rollout_monitor.events import (
    DeploymentRejected,
    DeployRequested,
    ModelVersionSyncChanged,
    RejectionReason,
    ReleaseRequested,
)
from rollout_monitor.ports import Requests, VersionApi, VersionWaits
from rollout_monitor.records import RequestClaim, RequestContent, SyncOutcome, VersionWait
from rollout_monitor.rejections import invalid, problems, refusal_reason, request_id_of
from rollout_monitor.versions import VersionGuard, not_ready

logger = logging.getLogger(__name__)

MAX_KNOWN_VERSIONS = 500  # versions of the same weights kept from the listing before an upload


class UploadOutcomeUnknownError(Exception):
    """The upload may have made a version that is not listed yet: retry later, which looks
    again and never uploads again."""


@dataclass
class ReleaseService:
    deploys: DeployService
    guard: VersionGuard
    cerebras: VersionApi
    requests: Requests
    waits: VersionWaits

    def now(self) -> float:
        return self.deploys.now()  # one clock (a test's, in tests)

    # -- Release Requested ------------------------------------------------------------------

    def release(self, detail: Any, event_id: str) -> DeployResult:
        request_id = request_id_of(detail, event_id)
        try:
            release = ReleaseRequested.model_validate(detail)
        except ValidationError as exc:
            problem = f"Release Requested: {problems(exc)}"
            return self.deploys.reject_unclaimed(invalid(request_id, detail, problem, self.now()))
        content = RequestContent(
            endpoint_id=release.endpoint_id, model=release.content_key(), force=release.force
        )
        owned, claim = self.requests.claim(
            request_id, content, self.now(), self.deploys.lease_seconds
        )
        if not owned:
            if claim.fingerprint not in (None, content.fingerprint):
                message = (
                    f"request_id {request_id} was first used for another request (fingerprint "
                    f"{claim.fingerprint}); this release has fingerprint {content.fingerprint}"
                )
                rejection = _rejected(
                    release, request_id, RejectionReason.REQUEST_ID_CONFLICT, message, self.now()
                )
                return self.deploys.reject_unclaimed(
                    rejection.model_copy(
                        update={"event_id": f"rejected:{request_id}:conflict:{content.fingerprint}"}
                    )
                )
            return self.deploys.duplicate(claim)
        ended = self.waits.get(request_id)
        if ended is not None and ended.finished:  # taken over after its wait's end: go on
            return self._after_wait(ended, claim)
        try:
            return self._upload_and_wait(release, claim)
        except Exception:
            self.requests.interrupt(request_id, claim.claimed_at)
            raise

    def _upload_and_wait(self, release: ReleaseRequested, claim: RequestClaim) -> DeployResult:
        uploaded = self._upload(release, claim)
        if isinstance(uploaded, DeploymentRejected):
            return self.deploys.finish_rejection(claim, uploaded)
        model = uploaded.name  # orgs/<org>/models/<arch>/versions/<id>
        request = DeployRequested.model_validate(
            release.model_dump(
                include={"endpoint_id", "requested_by", "reason", "force", "team", "labels"}
            )
            | {"model": model, "request_id": claim.request_id}
        )
        sync_status = uploaded.response.sync_status
        self.guard.wait(claim, request, sync_status, self.now(), release=True)
        return DeployResult(request_id=claim.request_id, outcome="waiting")

    def _upload(
        self, release: ReleaseRequested, claim: RequestClaim
    ) -> ModelVersionOperation | DeploymentRejected:
        """The release's version: uploaded now, or found after an earlier delivery's upload."""
        if claim.upload_sent_at is not None:  # an earlier delivery may have uploaded: look
            found = self._find(release, claim.upload_known_before or [])
            if found is None:
                raise UploadOutcomeUnknownError(
                    f"request {claim.request_id}: the upload was sent at {claim.upload_sent_at} "
                    "and its version is not listed yet; retry later (it is never sent again)"
                )
            return found
        try:
            known = self._listed(release)
        except CerebrasRefusedError as exc:
            return _refused(release, claim.request_id, exc, self.now())
        if len(known) > MAX_KNOWN_VERSIONS:
            message = (
                f"{len(known)} versions of {release.model_arch_id} already hold "
                f"{release.weight_uri}: upload the weights under a new path"
            )
            rejection = _rejected(
                release, claim.request_id, RejectionReason.INVALID_REQUEST, message, self.now()
            )
            return rejection
        if not self.requests.mark_upload_sent(claim, self.now(), known):
            raise RequestInProgressError(f"request {claim.request_id} was taken over")
        try:
            return self.cerebras.upload_model(
                release.org_name,
                release.model_arch_id,
                release.weight_uri,
                release.version_aliases,
            )
        except CerebrasRefusedError as exc:
            return _refused(release, claim.request_id, exc, self.now())
        except CerebrasTransientError:
            # Only a call Cerebras certainly did not act on gets here (a 429 to the end, a
            # connection that never sent it): any other failure is an unknown outcome.
            self.requests.unmark_upload_sent(claim)
            raise
        except CerebrasOutcomeUnknownError as exc:
            logger.warning(
                "upload outcome unknown: looking for the version",
                extra={"request_id": claim.request_id, "error": type(exc.cause).__name__},
            )
            found = self._find(release, known)
            if found is None:
                raise UploadOutcomeUnknownError(
                    f"request {claim.request_id}: the upload failed ambiguously and no new "
                    "version is listed yet; retry later (it is never sent again)"
                ) from exc
            return found

    def _listed(self, release: ReleaseRequested) -> list[str]:
        """The versions already holding these weights: none of them is this upload's."""
        try:
            listing = self.cerebras.list_model_versions(release.org_name, release.model_arch_id)
        except CerebrasRefusedError as exc:
            if exc.status_code == 404:
                return []  # no version of this architecture yet
            raise
        return [
            v.name
            for v in listing.model_versions
            if v.response.customer_s3_uri == release.weight_uri
        ]

    def _find(self, release: ReleaseRequested, known: list[str]) -> ModelVersionOperation | None:
        """A version listed now and not before, of these weights and with these aliases."""
        listing = self.cerebras.list_model_versions(release.org_name, release.model_arch_id)
        before = set(known)
        return next(
            (
                v
                for v in listing.model_versions
                if v.name not in before
                and v.response.customer_s3_uri == release.weight_uri
                and set(release.version_aliases) <= set(v.response.version_aliases)
            ),
            None,
        )

    # -- a wait's end -----------------------------------------------------------------------

    def resume(self, detail: Any) -> DeployResult:
        """A wait ended: deploy its version, or reject the request ``version_not_ready``.

        The event only wakes the function: what is done is decided by the table's wait and
        request, so a forged or repeated event deploys nothing twice.
        """
        event = ModelVersionSyncChanged.model_validate(detail)
        wait = self.waits.get(event.request_id)
        claim = self.requests.get(event.request_id)
        if wait is None or not wait.finished or claim is None:  # not the table's word
            logger.warning("a wait's end the table does not know", extra={"event": event.event_id})
            return DeployResult(request_id=event.request_id, outcome="ignored")
        lease = self.deploys.lease_seconds
        resumed = self.requests.resume(claim, self.now(), lease)
        if resumed is None and claim.content is not None:  # taken back, then interrupted
            owned, taken = self.requests.claim(claim.request_id, claim.content, self.now(), lease)
            resumed = taken if owned else None
        if resumed is None:  # another delivery has it (wait for its result), or it is decided
            return self.deploys.duplicate(self.requests.get(claim.request_id) or claim)
        return self._after_wait(wait, resumed)

    def _after_wait(self, wait: VersionWait, claim: RequestClaim) -> DeployResult:
        """Deploy the synced version through the deploy path, or reject version_not_ready."""
        request = DeployRequested.model_validate(wait.deploy_request())
        if wait.outcome == SyncOutcome.READY:
            return self.deploys.run_claimed(request, claim)
        return self.deploys.finish_rejection(claim, not_ready(request, wait, self.now()))


def _rejected(
    release: ReleaseRequested,
    request_id: str,
    reason: RejectionReason,
    message: str,
    now: float,
    **extra: Any,
) -> DeploymentRejected:
    return DeploymentRejected.of(
        request_id,
        reason,
        message,
        rejected_at=now,
        endpoint_id=release.endpoint_id,
        model=f"orgs/{release.org_name}/models/{release.model_arch_id}",
        requested_by=release.requested_by,
        team=release.team,
        labels=release.labels,
        **extra,
    )


def _refused(
    release: ReleaseRequested, request_id: str, exc: CerebrasRefusedError, now: float
) -> DeploymentRejected:
    return _rejected(
        release,
        request_id,
        refusal_reason(exc),
        f"Cerebras refused the upload of {release.weight_uri} with {exc.status_code}",
        now,
        status_code=exc.status_code,
        cerebras_detail=exc.detail,
    )
