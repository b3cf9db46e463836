"""Everything the services raise, in one tree. Each edge translates these into its answer
(an ACK code, an OperationOutcome, an HTTP status, a readable form message).

    ServiceError
    ├── MessageRejected    a stored message cannot become an attendance (error store);
    │                      raised by the adapters' decoders, kept by the pipeline
    ├── NotFound           no such referral for this user (404)
    ├── IntakeClosed       the intake writer has stopped: nothing more can be stored
    ├── HubConfigError     the hub keys file is missing or malformed (also a ValueError)
    ├── ReissueRefused     a month's report cannot be re-issued as asked (the message says why)
    └── DeliveryFailed     an alert channel could not deliver (raised by the channels in
                           adapters/alerts; `permanent` when retrying cannot help)

Refusals are values: a `consent.policy.ConsentDecision` with `allowed=False`, a
`consent.records.Refusal`. Messages never carry identifiable data: they name segments,
fields and rules, not values.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of everything the services raise."""


class MessageRejected(ServiceError):
    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(detail)
        self.stage = stage
        self.detail = detail


class NotFound(ServiceError):
    pass


class IntakeClosed(ServiceError):
    """The writer has stopped; nothing more can be stored."""


class HubConfigError(ServiceError, ValueError):
    """The hub keys file is missing or malformed. Names the key, never the secret."""


class ReissueRefused(ServiceError):
    """A month's report cannot be re-issued as asked: not frozen yet, no reason, or nothing
    changed. The message says which, naming site and month only."""


class DeliveryFailed(ServiceError):
    """An alert channel did not deliver. `reason` is short and holds no content (an HTTP
    status, an exception's class); `permanent`: the target is gone (retrying cannot help)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
