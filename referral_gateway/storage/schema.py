"""Every table of the gateway, registered in `SQLModel.metadata` by importing its module.

Alembic's environment and the migration test import this module, so the models they compare
the migrations with are all of them, whichever modules a process happened to import.
"""

from referral_gateway.storage import (  # noqa: F401
    accounts,
    casework,
    consent_store,
    tables,
)
