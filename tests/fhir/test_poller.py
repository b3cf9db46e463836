"""Polling a real FHIR server running in another process (tests/fhir/source_server.py)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text

from adapters.fhir.poller import FhirPoller
from adapters.fhir.sources import FhirSource
from referral_gateway.storage.fhir_store import PollStateStore
from referral_gateway.storage.inbox import INBOX
from tests.fhir import builders as b


@pytest.fixture
def poller(writer, engine) -> FhirPoller:
    return FhirPoller(writer, PollStateStore(engine))


def a_source(server, **overrides) -> FhirSource:
    settings = {
        "name": "rxx-epr",
        "base_url": server.base_url,
        "site": "RXX01",
        "lookback_hours": 24 * 365 * 5,
    } | overrides
    return FhirSource(**settings)


def ed_visit(n: int, last_updated: str, *, klass: str = "EMER"):
    """An attendance as the source holds it: Patient p<n> and Encounter e<n>."""
    patient = b.at_source(b.patient(id=f"p{n}", nhs=b.nhs_number(n)), last_updated)
    encounter = b.at_source(
        b.encounter(id=f"e{n}", visit=f"ED-{n}", subject=f"Patient/p{n}", klass=klass),
        last_updated,
    )
    return patient, encounter


def encounter_searches(server) -> list[str]:
    """The Encounter searches the source was asked (not its metadata or related searches)."""
    return [r for r in server.requests() if r.startswith("/fhir/Encounter?")]


def stored_keys(engine) -> list[str]:
    with engine.connect() as conn:
        return [
            r.message_key
            for r in conn.execute(
                select(INBOX.c.message_key).where(INBOX.c.state != "error").order_by(INBOX.c.id)
            )
        ]


def test_first_poll_stores_ed_encounters_with_their_patients_and_sets_the_watermark(
    source_server, poller, engine, clock
):
    source_server.add(*ed_visit(1, "2025-03-01T21:14:00Z"), *ed_visit(2, "2025-03-01T22:40:00Z"))
    result = poller.poll_source(a_source(source_server), clock())
    assert result.ok and result.ran
    assert (result.encounters, result.patients, result.stored) == (2, 2, 4)
    assert result.watermark == "2025-03-01T22:40:00Z"
    assert sorted(stored_keys(engine)) == [
        "Encounter/e1/_history/1",
        "Encounter/e2/_history/1",
        "Patient/p1/_history/1",
        "Patient/p2/_history/1",
    ]
    assert PollStateStore(engine).load("rxx-epr").watermark == "2025-03-01T22:40:00Z"
    [search] = encounter_searches(source_server)
    query = parse_qs(urlsplit(search).query)
    assert query["class"] == ["EMER"]
    assert query["_include"] == ["Encounter:subject"]
    assert query["_lastUpdated"][0].startswith("gt")


def test_polling_again_over_the_overlap_stores_nothing_twice_and_counts_no_duplicates(
    source_server, poller, engine, clock
):
    source_server.add(*ed_visit(1, "2025-03-01T21:14:00Z"))
    source = a_source(source_server, overlap_seconds=3600)
    poller.poll_source(source, clock())
    clock.advance(minutes=1)
    again = poller.poll_source(source, clock())
    assert again.ok and again.encounters == 1  # re-read through the overlap
    assert (again.stored, again.unchanged) == (0, 2)
    assert len(stored_keys(engine)) == 2
    with engine.connect() as conn:
        counted = dict(
            conn.execute(
                text("select metric, sum(n) from feed_count where sender='rxx-epr' group by metric")
            ).all()
        )
    assert counted == {"received": 2}  # the re-read is ours: the sender sent nothing twice


def test_the_next_poll_asks_from_the_watermark_minus_the_overlap(source_server, poller, clock):
    source_server.add(*ed_visit(1, "2025-03-01T21:14:00Z"))
    source = a_source(source_server, overlap_seconds=120)
    poller.poll_source(source, clock())
    poller.poll_source(source, clock())
    second = parse_qs(urlsplit(encounter_searches(source_server)[-1]).query)
    assert second["_lastUpdated"] == ["gt2025-03-01T21:12:00.000Z"]


def test_a_changed_encounter_is_a_new_version_and_an_unchanged_one_is_not(
    source_server, poller, engine, clock
):
    p1, e1 = ed_visit(1, "2025-03-01T21:14:00Z")
    source_server.add(p1, e1, *ed_visit(2, "2025-03-01T21:20:00Z"))
    source = a_source(source_server)
    poller.poll_source(source, clock())
    finished = b.at_source(
        {
            **e1,
            "status": "finished",
            "period": {"start": "2025-03-01T21:14:00Z", "end": "2025-03-02T00:10:00Z"},
        },
        "2025-03-02T00:10:05Z",
        version=2,
    )
    source_server.add(finished)
    result = poller.poll_source(source, clock())
    assert result.stored == 1
    assert stored_keys(engine)[-1] == "Encounter/e1/_history/2"
    assert result.watermark == "2025-03-02T00:10:05Z"


def test_next_links_are_followed_page_by_page(source_server, poller, engine, clock):
    for n in range(5):
        source_server.add(*ed_visit(n, f"2025-03-01T1{n}:00:00Z"))
    result = poller.poll_source(a_source(source_server, page_size=2), clock())
    assert (result.pages, result.encounters, result.patients) == (3, 5, 5)
    assert len(stored_keys(engine)) == 10
    assert result.watermark == "2025-03-01T14:00:00Z"
    assert [
        parse_qs(urlsplit(r).query).get("_page") for r in encounter_searches(source_server)
    ] == [
        None,
        ["1"],
        ["2"],
    ]


def test_encounters_that_are_not_emergencies_are_left_at_the_source(
    source_server, poller, engine, clock
):
    source_server.options(ignore_class=True)  # a server that ignores the class parameter
    source_server.add(
        *ed_visit(1, "2025-03-01T21:00:00Z"), *ed_visit(2, "2025-03-01T21:05:00Z", klass="IMP")
    )
    result = poller.poll_source(a_source(source_server), clock())
    assert result.encounters == 1
    assert sorted(stored_keys(engine)) == ["Encounter/e1/_history/1", "Patient/p1/_history/1"]


def test_patients_are_read_one_by_one_when_the_server_ignores_include(
    source_server, poller, engine, clock
):
    source_server.options(ignore_include=True)
    source_server.add(*ed_visit(1, "2025-03-01T21:00:00Z"))
    result = poller.poll_source(a_source(source_server), clock())
    assert result.patients == 1
    assert "/fhir/Patient/p1" in source_server.requests()
    assert "Patient/p1/_history/1" in stored_keys(engine)


def test_a_failing_server_keeps_the_watermark_and_backs_off(source_server, poller, clock):
    source_server.add(*ed_visit(1, "2025-03-01T21:00:00Z"))
    source = a_source(source_server)
    poller.poll_source(source, clock())
    source_server.fail(2, status=503)
    first = poller.poll_source(source, clock())
    assert not first.ok and first.watermark == "2025-03-01T21:00:00Z"
    assert first.next_attempt_at == clock() + timedelta(seconds=30)
    assert "503" in (first.error or "")
    skipped = poller.poll_source(source, clock() + timedelta(seconds=10))
    assert not skipped.ran
    clock.advance(seconds=31)
    second = poller.poll_source(source, clock())
    assert not second.ok and second.next_attempt_at == clock() + timedelta(seconds=60)
    clock.advance(seconds=61)
    recovered = poller.poll_source(source, clock())
    assert recovered.ok
    state = PollStateStore(poller.states.engine).load("rxx-epr")
    assert (state.failures, state.next_attempt_at) == (0, None)


def test_an_unreachable_server_is_a_failure_not_a_crash(poller, clock):
    source = FhirSource(
        name="gone", base_url="http://127.0.0.1:9/fhir", site="RXX01", timeout_seconds=2
    )
    result = poller.poll_source(source, clock())
    assert result.ran and not result.ok and result.next_attempt_at is not None


def test_a_next_link_off_the_source_is_refused(source_server, poller, engine, clock):
    source_server.options(next_base="http://169.254.169.254/latest")
    for n in range(3):
        source_server.add(*ed_visit(n, f"2025-03-01T1{n}:00:00Z"))
    result = poller.poll_source(a_source(source_server, page_size=2), clock())
    assert not result.ok and "outside" in (result.error or "")
    assert result.pages == 1
    assert PollStateStore(engine).load("rxx-epr").watermark is None


def test_a_source_that_wants_a_token_gets_it(locked_source_server, poller, engine, clock):
    locked_source_server.add(*ed_visit(1, "2025-03-01T21:00:00Z"))
    without = poller.poll_source(a_source(locked_source_server, name="no-token"), clock())
    assert not without.ok and "401" in (without.error or "")
    with_token = poller.poll_source(
        a_source(locked_source_server, bearer_token="source-secret"), clock()
    )
    assert with_token.ok and with_token.stored == 2


def test_an_invalid_resource_from_the_source_goes_to_the_error_store(
    source_server, poller, engine, clock
):
    p1, e1 = ed_visit(1, "2025-03-01T21:00:00Z")
    p2, e2 = ed_visit(2, "2025-03-01T21:10:00Z")
    e2["period"] = {"start": "last tuesday"}
    source_server.add(p1, e1, p2, e2)
    result = poller.poll_source(a_source(source_server), clock())
    assert result.ok and result.invalid == 1
    with engine.connect() as conn:
        errors = conn.execute(
            select(INBOX.c.error_stage, INBOX.c.error_detail).where(INBOX.c.state == "error")
        ).all()
    assert [e.error_stage for e in errors] == ["validate"]
    assert "Encounter.period.start" in errors[0].error_detail
    assert result.watermark == "2025-03-01T21:10:00Z"  # a bad resource does not stall the feed


def test_the_channel_polls_each_source_when_it_starts_and_subscribed_ones_as_a_safety_net(
    source_server, engine, keyring, clock
):
    import time

    from referral_gateway.wiring.fhir import build_fhir_channel

    source_server.add(*ed_visit(1, "2025-03-01T21:00:00Z"))
    channel = build_fhir_channel(
        engine,
        keyring,
        clock,
        sources=(
            a_source(source_server),
            a_source(source_server, name="hooked", poll=False),
            a_source(source_server, name="quiet", poll=False, safety_net_seconds=0),
        ),
    )
    assert channel._scheduler is None
    channel.start()
    try:
        jobs = {j.id: j.trigger.interval.total_seconds() for j in channel._scheduler.get_jobs()}
        deadline = time.monotonic() + 10
        states = PollStateStore(engine)
        while time.monotonic() < deadline and not (
            states.load("rxx-epr").last_run_at and states.load("hooked").last_run_at
        ):
            time.sleep(0.05)
    finally:
        channel.stop()
    assert jobs == {
        "fhir-poll-rxx-epr": 60,
        "fhir-poll-hooked": 900,  # the safety net's default pace
        "fhir-focus-retry": 15,
    }
    assert sorted(stored_keys(engine)) == ["Encounter/e1/_history/1", "Patient/p1/_history/1"]
    assert states.load("hooked").watermark == "2025-03-01T21:00:00Z"
    assert states.load("quiet").last_run_at is None


def coded_visit(n: int, last_updated: str):
    """An attendance whose only assault signal is a Condition (ICD-10 X99) and an injury
    intent Observation, held by the source apart from the Encounter (no reasonCode)."""
    patient = b.at_source(b.patient(id=f"p{n}", nhs=b.nhs_number(n)), last_updated)
    encounter = b.at_source(
        b.encounter(
            id=f"e{n}", visit=f"ED-{n}", subject=f"Patient/p{n}", reasons=(), reason_text=None
        ),
        last_updated,
    )
    condition = b.at_source(
        b.condition(id=f"c{n}", encounter_ref=f"Encounter/e{n}", subject=f"Patient/p{n}"),
        last_updated,
    )
    intent = b.at_source(
        b.injury_intent(id=f"o{n}", encounter_ref=f"Encounter/e{n}", subject=f"Patient/p{n}"),
        last_updated,
    )
    return patient, encounter, condition, intent


def test_conditions_and_observations_are_searched_per_page_of_encounters(
    source_server, poller, engine, clock
):
    source_server.add(
        *coded_visit(1, "2025-03-01T21:14:00Z"), *coded_visit(2, "2025-03-01T21:20:00Z")
    )
    result = poller.poll_source(a_source(source_server), clock())
    assert (result.encounters, result.related) == (2, 4)
    assert {"Condition/c1/_history/1", "Observation/o2/_history/1"} <= set(stored_keys(engine))
    [conditions] = [r for r in source_server.requests() if r.startswith("/fhir/Condition?")]
    assert parse_qs(urlsplit(conditions).query)["encounter"] == ["Encounter/e1,Encounter/e2"]


def test_a_source_that_supports_revinclude_gives_them_with_the_encounters(
    source_server, poller, engine, clock
):
    source_server.options(revinclude=True)
    source_server.add(*coded_visit(1, "2025-03-01T21:14:00Z"))
    result = poller.poll_source(a_source(source_server), clock())
    assert result.related == 2
    assert {"Condition/c1/_history/1", "Observation/o1/_history/1"} <= set(stored_keys(engine))
    [search] = encounter_searches(source_server)
    assert parse_qs(urlsplit(search).query)["_revinclude"] == [
        "Condition:encounter",
        "Observation:encounter",
    ]
    assert not [r for r in source_server.requests() if r.startswith("/fhir/Condition?")]


def test_a_source_that_ignores_sort_loses_nothing_when_polls_stop_at_the_page_limit(
    source_server, poller, engine, clock, caplog
):
    source_server.options(ignore_sort=True)
    newest_first = [f"2025-03-01T1{n}:00:00Z" for n in (5, 4, 3, 2, 1)]
    for n, last_updated in enumerate(newest_first):
        source_server.add(*ed_visit(n, last_updated))
    source = a_source(source_server, page_size=2, max_pages=1)
    results = []
    with caplog.at_level("WARNING", logger="adapters.fhir.poller"):
        for _ in range(4):
            results.append(poller.poll_source(source, clock()))
            clock.advance(minutes=1)
    assert [r.truncated for r in results] == [True, True, False, False]
    assert [r.watermark for r in results] == [None, None, newest_first[0], newest_first[0]]
    assert sorted(k for k in stored_keys(engine) if k.startswith("Encounter/")) == [
        f"Encounter/e{n}/_history/1" for n in range(5)
    ]
    cut_offs = [r.getMessage() for r in caplog.records if "page limit" in r.getMessage()]
    assert len(cut_offs) == 2
    assert all("rxx-epr" in m and "Patient" not in m and "ED-" not in m for m in cut_offs)


def test_backoff_stops_growing_at_the_source_s_ceiling(source_server, poller, clock):
    source = a_source(source_server, backoff_max_seconds=45)
    source_server.fail(4, status=503)  # the first run asks for /metadata too
    delays = []
    for _ in range(3):
        result = poller.poll_source(source, clock())
        delays.append((result.next_attempt_at - clock()).total_seconds())
        clock.advance(seconds=delays[-1])
    assert delays == [30, 45, 45]
    assert poller.poll_source(source, clock()).ok


def test_a_source_that_advertises_revinclude_but_ignores_it_is_searched_per_page(
    source_server, poller, engine, clock
):
    source_server.options(advertise_revinclude=True)
    source_server.add(*coded_visit(1, "2025-03-01T21:14:00Z"))
    result = poller.poll_source(a_source(source_server), clock())
    assert result.related == 2
    assert {"Condition/c1/_history/1", "Observation/o1/_history/1"} <= set(stored_keys(engine))
    assert [r for r in source_server.requests() if r.startswith("/fhir/Condition?")]


def test_when_the_page_to_carry_on_from_has_expired_the_window_is_searched_again(
    source_server, poller, engine, clock, caplog
):
    source_server.options(ignore_sort=True)
    for n, last_updated in enumerate(["2025-03-01T13:00:00Z", "2025-03-01T12:00:00Z"]):
        source_server.add(*ed_visit(n, last_updated))
    source_server.add(*ed_visit(2, "2025-03-01T11:00:00Z"))
    source = a_source(source_server, page_size=2, max_pages=1)
    first = poller.poll_source(source, clock())
    source_server.options(expire_pages=True)
    with caplog.at_level("WARNING", logger="adapters.fhir.poller"):
        again = poller.poll_source(source, clock())
    assert (first.truncated, again.ok, again.truncated, again.watermark) == (True, True, True, None)
    assert any("no longer serves" in r.getMessage() for r in caplog.records)
    source_server.options(expire_pages=False)
    done = poller.poll_source(source, clock())
    assert (done.truncated, done.watermark) == (False, "2025-03-01T13:00:00Z")
    assert "Encounter/e2/_history/1" in stored_keys(engine)


def test_a_diagnosis_coded_after_its_encounter_was_read_is_found_by_the_next_poll(
    source_server, poller, engine, clock
):
    source_server.add(*ed_visit(1, "2025-03-01T21:14:00Z"))
    source = a_source(source_server, overlap_seconds=0)  # the Encounter is not read again
    poller.poll_source(source, clock())
    inpatient = b.at_source(
        b.encounter(id="e9", visit="IP-9", subject="Patient/p1", klass="IMP"),
        "2025-03-01T21:00:00Z",
    )
    source_server.add(
        inpatient,
        b.at_source(b.condition(id="c1", encounter_ref="Encounter/e1"), "2025-03-01T22:30:00Z"),
        b.at_source(b.injury_intent(id="o1", encounter_ref="Encounter/e1"), "2025-03-01T22:31:00Z"),
        b.at_source(b.condition(id="c9", encounter_ref="Encounter/e9"), "2025-03-01T22:32:00Z"),
    )
    clock.advance(minutes=1)
    later = poller.poll_source(source, clock())
    assert (later.ok, later.related) == (True, 2)
    assert {"Condition/c1/_history/1", "Observation/o1/_history/1"} <= set(stored_keys(engine))
    assert not [k for k in stored_keys(engine) if "9/" in k]
    assert PollStateStore(engine).load("rxx-epr").related_watermark == "2025-03-01T22:32:00Z"
    searches = [r for r in source_server.requests() if r.startswith("/fhir/Condition?_last")]
    assert len(searches) == 1  # not on the first look back: Encounters bring their own
