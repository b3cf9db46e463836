"""The gateway's own error tree. Each edge translates these into its answer (an ACK code,
an OperationOutcome, an HTTP status, a readable form message).

    GatewayError
    ├── MessageRejected      a stored message cannot become an attendance (error store)
    ├── StorageUnavailable   the database did not take a write (AE / 503)
    └── NotFound             no such referral for this user (404)

Messages never carry identifiable data: they name segments, fields and rules, not values.
"""

from __future__ import annotations


class GatewayError(Exception):
    pass


class MessageRejected(GatewayError):
    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(detail)
        self.stage = stage
        self.detail = detail


class StorageUnavailable(GatewayError):
    pass


class NotFound(GatewayError):
    pass
