"""The pure rules of alerts: what an alert may hold and say, who hears what, batching and
backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from referral_gateway.domain.alerts import (
    Alert,
    AlertChannel,
    AlertEvent,
    AlertKind,
    AlertPreference,
    Batcher,
    BatchKey,
    RetryPolicy,
    alert_event,
    alert_for,
    alert_text,
    feed_alert,
    feed_event,
    next_attempt,
    recipients,
    site_webhooks,
)
from referral_gateway.domain.errors import AlertError, SiteConfigError
from referral_gateway.domain.referral import ReferralNews, ReferralUpdate

RID = "0b6f3c1e-3f5a-4c1e-9a63-1d2e3f4a5b6c"
RID2 = "1c7e4d2f-4a6b-4d2f-8b74-2e3f4a5b6c7d"
T0 = datetime(2026, 3, 14, 22, 30, tzinfo=UTC)


def test_an_alert_says_site_count_and_kind_in_fixed_words():
    assert alert_text(Alert("RXX01", AlertKind.NEW_CANDIDATE, 1, f"/referrals/{RID}")) == (
        "RXX01: 1 new assault candidate on the queue"
    )
    assert alert_text(Alert("RXX01", AlertKind.NEW_POSSIBLE_CANDIDATE, 2, "/queue")) == (
        "RXX01: 2 new possible assault candidates on the queue"
    )
    assert alert_text(Alert("RXX01", AlertKind.DISCHARGED_UNCLAIMED, 3, "/queue")) == (
        "RXX01: 3 unclaimed candidates discharged"
    )


@pytest.mark.parametrize(
    "site, count, link",
    [
        ("Samwise Testington", 1, "/queue"),  # a name where the site goes
        ("9990000026", 1, "/queue"),  # an NHS number is not an ODS code (no letter)
        ("07700900000", 1, "/queue"),
        ("RXX01", 1, "/referrals/V7654321"),  # a visit number in the link
        ("RXX01", 1, "/queue?nhs=9990000026"),  # anything added to the link
        ("RXX01", 1, "https://elsewhere.test/queue"),
        ("RXX01", 0, "/queue"),
        ("RXX01", True, "/queue"),  # a bool is not a count
        ("RXX01", "07700 900000", "/queue"),
    ],
)
def test_an_alert_refuses_anything_but_a_site_code_a_count_and_a_gateway_link(site, count, link):
    with pytest.raises(AlertError):
        Alert(site, AlertKind.NEW_CANDIDATE, count, link)


def test_one_referral_links_to_its_page_and_several_new_ones_to_the_new_tab():
    assert alert_for("RXX01", AlertKind.NEW_CANDIDATE, [RID]).link == f"/referrals/{RID}"
    many = alert_for("RXX01", AlertKind.NEW_CANDIDATE, [RID, RID2])
    assert (many.link, many.count) == ("/queue?tab=new", 2)


@pytest.mark.parametrize(
    "kind, link",
    [
        (AlertKind.NEW_POSSIBLE_CANDIDATE, "/queue?tab=new"),
        (AlertKind.ESCALATED, "/queue?tab=new"),
        (AlertKind.DISCHARGED_UNCLAIMED, "/queue?tab=new"),
        (AlertKind.ASSIGNED, "/queue?tab=caseload"),
        (AlertKind.ONWARD_DECLINED, "/queue?tab=caseload"),
    ],
)
def test_several_referrals_link_to_the_tab_where_they_wait(kind: AlertKind, link: str):
    assert alert_for("RXX01", kind, [RID, RID2]).link == link


def test_the_queue_tabs_are_the_only_queue_links_an_alert_takes():
    for link in ("/queue", "/queue?tab=new", "/queue?tab=caseload"):
        assert Alert("RXX01", AlertKind.NEW_CANDIDATE, 2, link).link == link
    for added in ("/queue?tab=new&nhs=9990000026", "/queue?tab=V7654321", "/queue?tab=all"):
        with pytest.raises(AlertError):
            Alert("RXX01", AlertKind.NEW_CANDIDATE, 2, added)


def test_news_that_alerts_arrivals_escalations_and_unclaimed_discharges_only():
    def kind(update: ReferralUpdate, unclaimed: bool = True) -> AlertKind | None:
        event = alert_event(ReferralNews(RID, "RXX01", update), unclaimed=unclaimed)
        return event.kind if event else None

    assert kind(ReferralUpdate.NEW) is AlertKind.NEW_CANDIDATE
    assert kind(ReferralUpdate.ESCALATED) is AlertKind.ESCALATED
    assert kind(ReferralUpdate.DISCHARGED) is AlertKind.DISCHARGED_UNCLAIMED
    assert kind(ReferralUpdate.DISCHARGED, unclaimed=False) is None
    assert kind(ReferralUpdate.MOVED) is None
    assert kind(ReferralUpdate.CANCELLED) is None


def test_a_candidate_on_suspicion_only_alerts_as_a_possible_assault_batched_apart():
    possible = alert_event(
        ReferralNews(RID, "RXX01", ReferralUpdate.NEW, possible=True), unclaimed=True
    )
    definite = alert_event(ReferralNews(RID2, "RXX01", ReferralUpdate.NEW), unclaimed=True)
    assert possible is not None and definite is not None
    batcher = Batcher(window=30)
    for event in (possible, definite):
        batcher.add(BatchKey("chat", event.site, event.kind), event.referral_id, now=0)
    texts = sorted(alert_text(batch.alert) for batch in batcher.due(now=31))
    assert texts == [
        "RXX01: 1 new assault candidate on the queue",
        "RXX01: 1 new possible assault candidate on the queue",
    ]


PUSH = frozenset({AlertChannel.PUSH})
WORKER = AlertPreference("w", False, frozenset({"RXX01"}), on_shift=True, channels=PUSH)
OFF_SHIFT = AlertPreference("off", False, frozenset({"RXX01"}), on_shift=False, channels=PUSH)
OTHER_SITE = AlertPreference("o", False, frozenset({"RYY02"}), on_shift=True, channels=PUSH)
LEAD = AlertPreference("lead", True, frozenset({"RXX01"}), on_shift=True, channels=PUSH)
NO_CHANNEL = AlertPreference("quiet", False, frozenset({"RXX01"}), on_shift=True)
PEOPLE = [WORKER, OFF_SHIFT, OTHER_SITE, LEAD, NO_CHANNEL]


def ids(event: AlertEvent) -> set[str]:
    return {p.user_id for p in recipients(event, PEOPLE)}


def test_a_new_candidate_reaches_the_sites_caseworkers_on_shift_with_a_channel():
    assert ids(AlertEvent(AlertKind.NEW_CANDIDATE, "RXX01", RID)) == {"w", "lead"}


def test_an_escalation_reaches_the_team_leads_on_shift_only():
    assert ids(AlertEvent(AlertKind.ESCALATED, "RXX01", RID)) == {"lead"}


def test_an_assignment_reaches_the_assignee_even_off_shift():
    assert ids(AlertEvent(AlertKind.ASSIGNED, "RXX01", RID, assignee="off")) == {"off"}


def test_a_services_answer_alerts_the_referrals_assignee_even_off_shift_and_nobody_else():
    for update, kind in [
        (ReferralUpdate.ONWARD_ACCEPTED, AlertKind.ONWARD_ACCEPTED),
        (ReferralUpdate.ONWARD_REJECTED, AlertKind.ONWARD_DECLINED),
    ]:
        news = ReferralNews(RID, "RXX01", update)
        event = alert_event(news, unclaimed=False, assignee="off")
        assert event == AlertEvent(kind, "RXX01", RID, assignee="off")
        assert ids(event) == {"off"}  # not the lead or the worker on shift
        assert alert_event(news, unclaimed=False, assignee=None) is None  # nobody has it


def test_a_services_answer_is_told_in_fixed_words_without_its_reason():
    accepted = Alert("RXX01", AlertKind.ONWARD_ACCEPTED, 1, f"/referrals/{RID}")
    declined = Alert("RXX01", AlertKind.ONWARD_DECLINED, 2, "/queue")
    assert alert_text(accepted) == "RXX01: 1 onward referral accepted"
    assert alert_text(declined) == "RXX01: 2 onward referrals declined by the service"


def test_a_feed_gone_silent_or_resumed_reaches_the_sites_team_leads_on_shift_only():
    silent = feed_event("RXX01", raised=True)
    resumed = feed_event("RXX01", raised=False)
    assert silent is not None and silent.kind is AlertKind.FEED_SILENT
    assert resumed is not None and resumed.kind is AlertKind.FEED_RESUMED
    assert ids(silent) == {"lead"} and ids(resumed) == {"lead"}
    assert feed_event("", raised=True) is None  # a sender of no known site has no team


def test_a_feeds_change_is_one_alert_linking_to_the_queue():
    silent = feed_event("RXX01", raised=True)
    assert silent is not None
    assert feed_alert(silent) == Alert("RXX01", AlertKind.FEED_SILENT, 1, "/queue")
    assert alert_text(feed_alert(silent)) == "RXX01: 1 feed silent"
    with pytest.raises(AlertError):
        feed_alert(AlertEvent(AlertKind.NEW_CANDIDATE, "RXX01", RID))


def test_arrivals_within_the_window_become_one_alert_with_their_count():
    batcher = Batcher(30)
    key = BatchKey("user:w", "RXX01", AlertKind.NEW_CANDIDATE)
    batcher.add(key, RID, now=0)
    batcher.add(key, RID2, now=10)
    batcher.add(key, RID2, now=11)  # the same referral heard twice counts once
    assert batcher.due(now=29) == []
    (batch,) = batcher.due(now=30)
    assert batch.alert == Alert("RXX01", AlertKind.NEW_CANDIDATE, 2, "/queue?tab=new")
    assert batcher.next_due() is None


def test_with_batching_off_each_arrival_is_due_at_once():
    batcher = Batcher(0)
    batcher.add(BatchKey("chat", "RXX01", AlertKind.NEW_CANDIDATE), RID, now=5)
    assert [b.alert.count for b in batcher.due(now=5)] == [1]


def test_retries_back_off_exponentially_up_to_a_ceiling_then_give_up():
    policy = RetryPolicy(first=timedelta(seconds=5), longest=timedelta(seconds=30), attempts=5)
    waits = [next_attempt(policy, n, now=T0) for n in range(1, 6)]
    assert [w - T0 for w in waits[:4] if w] == [
        timedelta(seconds=5),
        timedelta(seconds=10),
        timedelta(seconds=20),
        timedelta(seconds=30),
    ]
    assert waits[4] is None


def test_a_site_file_gives_each_site_its_own_chat_webhook():
    data = {"sites": {"RXX01": {"alerts": {"webhook_url": "https://chat.test/a"}}, "RYY02": {}}}
    assert site_webhooks(data) == {"RXX01": "https://chat.test/a"}
    with pytest.raises(SiteConfigError):
        site_webhooks({"sites": {"RXX01": {"alerts": {"webhook_url": "ftp://x"}}}})
    with pytest.raises(SiteConfigError):
        site_webhooks({"sites": {"RXX01": {"alerts": {"secret": "x"}}}})
