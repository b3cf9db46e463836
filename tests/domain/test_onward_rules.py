"""The rules of onward referrals: the Task's life, what a service may receive, the
directory's entries, and how long a failed delivery waits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from referral_gateway.domain.onward import (
    Channel,
    Mover,
    OnwardError,
    RetryPolicy,
    Service,
    ShareableField,
    TaskMove,
    TaskRefusal,
    TaskStatus,
    check_service,
    fields_for,
    gives_up,
    move_task,
    parse_fields,
    retry_delay,
)


def service(**overrides: object) -> Service:
    values: dict[str, object] = {
        "id": "wexcombe-youth",
        "name": "Wexcombe Youth Service",
        "code": "ZZW01",
        "offers": "Mentoring",
        "channel": Channel.FHIR,
        "endpoint": "https://wexcombe.example/fhir",
        "fields": frozenset({ShareableField.AGE}),
    }
    return Service(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "moves"),
    [
        (
            "accepted then completed",
            ["accepted", "in-progress", "on-hold", "in-progress", "completed"],
        ),
        ("received then rejected", ["received", "rejected"]),
        ("accepted then failed", ["accepted", "failed"]),
    ],
)
def test_a_service_moves_its_task_along_the_referral_life(path, moves):
    status = TaskStatus.REQUESTED
    for step in moves:
        move = TaskMove(TaskStatus(step), reason="Outside our area", outcome="Engaged")
        decided = move_task(status, move, by=Mover.SERVICE)
        assert isinstance(decided, TaskMove), (path, step)
        status = decided.status
    assert status.final


def test_a_rejection_needs_a_reason_and_a_completion_an_outcome():
    assert isinstance(
        move_task(
            TaskStatus.REQUESTED, TaskMove(TaskStatus.REJECTED, reason="  "), by=Mover.SERVICE
        ),
        TaskRefusal,
    )
    assert isinstance(
        move_task(TaskStatus.ACCEPTED, TaskMove(TaskStatus.COMPLETED), by=Mover.SERVICE),
        TaskRefusal,
    )


def test_a_final_task_moves_no_more_and_a_repeat_changes_nothing():
    for final in (
        TaskStatus.REJECTED,
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    ):
        assert isinstance(
            move_task(final, TaskMove(TaskStatus.ACCEPTED), by=Mover.SERVICE), TaskRefusal
        )
    assert move_task(TaskStatus.ACCEPTED, TaskMove(TaskStatus.ACCEPTED), by=Mover.SERVICE) is None


def test_only_the_gateway_cancels_and_nobody_skips_acceptance():
    refused = move_task(TaskStatus.ACCEPTED, TaskMove(TaskStatus.CANCELLED), by=Mover.SERVICE)
    assert isinstance(refused, TaskRefusal)
    assert move_task(TaskStatus.ACCEPTED, TaskMove(TaskStatus.CANCELLED), by=Mover.GATEWAY)
    assert isinstance(
        move_task(TaskStatus.REQUESTED, TaskMove(TaskStatus.IN_PROGRESS), by=Mover.SERVICE),
        TaskRefusal,
    )


def test_a_service_gets_only_the_fields_it_may_receive():
    values = {
        ShareableField.NHS_NUMBER: "9990001235",
        ShareableField.AGE: 16,
        ShareableField.PHONE: None,
    }
    assert fields_for(service(), values) == {"age": 16}
    assert fields_for(service(fields=frozenset()), values) == {}


def test_fields_are_named_from_the_list_and_unknown_names_refused():
    assert parse_fields("nhs_number, age") == {ShareableField.NHS_NUMBER, ShareableField.AGE}
    with pytest.raises(OnwardError, match="diagnosis"):
        parse_fields("age,diagnosis")


def test_directory_entries_need_what_their_channel_needs():
    assert check_service(service(channel=Channel.MANUAL, endpoint=None))
    for broken in (
        service(endpoint=None),
        service(channel=Channel.MANUAL),
        service(channel=Channel.WEBHOOK),  # no key id
        service(code="x"),
        service(id="Not A Slug"),
    ):
        with pytest.raises(OnwardError):
            check_service(broken)


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap():
    policy = RetryPolicy(base=timedelta(seconds=5), cap=timedelta(minutes=1), max_attempts=4)
    assert retry_delay(policy, 1, lambda: 0.0) == timedelta(seconds=2.5)
    assert retry_delay(policy, 1, lambda: 0.999) < timedelta(seconds=5)
    assert retry_delay(policy, 3, lambda: 0.999) > timedelta(seconds=19)
    assert retry_delay(policy, 30, lambda: 0.999) <= timedelta(minutes=1)
    assert not gives_up(policy, 3) and gives_up(policy, 4)
