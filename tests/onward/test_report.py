"""The monthly report counts onward referrals sent to services, by service and by where each
stands, from the database, with the same disclosure control as every other figure."""

from __future__ import annotations

from referral_gateway.domain.onward import TaskMove, TaskStatus
from referral_gateway.domain.report_period import ReportMonth
from referral_gateway.domain.reporting import (
    BY_DIRECTORY_SERVICE,
    BY_TASK_STATUS,
    SENT_TO_SERVICES,
)
from referral_gateway.services.reporting import ReportService
from referral_gateway.storage.report_facts import SqlFacts
from tests.consent_store.builders import WORKER
from tests.onward.builders import add_service, consented_referral, fhir_service

MARCH = ReportMonth(2026, 3)


def test_onward_referrals_are_counted_by_service_and_outcome_with_disclosure_control(
    onward, sharing, assignments, clock
):
    add_service(onward, fhir_service("http://127.0.0.1:9"), clock())
    add_service(onward, fhir_service("http://127.0.0.1:9", id="brackenfold"), clock())
    for n in range(11):
        rid = consented_referral(onward, sharing, assignments, clock(), visit_number=f"V{n}")
        service = "wexcombe-youth" if n < 9 else "brackenfold"
        task = onward.refer(WORKER, rid, service, now=clock())
        move = (
            TaskMove(TaskStatus.ACCEPTED)
            if n < 8
            else TaskMove(TaskStatus.REJECTED, reason="Outside our area")
        )
        onward.update_task(service, task.id, move, now=clock())

    reports = ReportService(SqlFacts(onward.engine))
    raw = reports.published("RXX01", MARCH, raw=True)
    shown = reports.published("RXX01", MARCH)

    assert raw.value(SENT_TO_SERVICES) == 11
    assert raw.value(SENT_TO_SERVICES, BY_DIRECTORY_SERVICE, "wexcombe-youth") == 9
    assert raw.value(SENT_TO_SERVICES, BY_DIRECTORY_SERVICE, "brackenfold") == 2
    assert raw.value(SENT_TO_SERVICES, BY_TASK_STATUS, "accepted") == 8
    assert raw.value(SENT_TO_SERVICES, BY_TASK_STATUS, "rejected") == 3
    assert shown.value(SENT_TO_SERVICES) == 10  # 11 rounds to 10
    assert shown.value(SENT_TO_SERVICES, BY_DIRECTORY_SERVICE, "brackenfold") == "*"
    # a lone * would give the 2 away from 10 - 9: the other part is hidden too
    assert shown.value(SENT_TO_SERVICES, BY_DIRECTORY_SERVICE, "wexcombe-youth") == "*"
    assert shown.value(SENT_TO_SERVICES, BY_TASK_STATUS, "rejected") == "*"
