"""The short form of `bench/load.py`: 50 MLLP connections and 100 HTTP clients (queue pages
as a signed-in youth worker, FHIR transaction Bundles) at once against a real `serve`
process for a few seconds. Every answer is an AA or a 200, and the resident memory of
`serve` and its pipeline process is sampled. No timing, and no memory trend (a few seconds
say nothing about it; the long form judges that), is asserted."""

from __future__ import annotations

import pytest

from bench.load import prepared_serve, run_load

pytestmark = pytest.mark.slow


def test_fifty_mllp_connections_and_a_hundred_http_clients_are_all_answered(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    serve, token = prepared_serve(data, f"sqlite:///{data / 'gateway.db'}")
    try:
        outcome = run_load(serve, token, seconds=6, mllp_rate=50, http_rate=50, sample_every=0.5)
    finally:
        serve.proc.terminate()
        serve.proc.wait(30)
    print("\n".join(outcome.lines(verdict=False)))
    assert outcome.failures == []
    assert outcome.good, outcome.answers
    kinds = {answer.rsplit(" ", 1)[0] for answer in outcome.answers}
    assert kinds == {"MLLP", "FHIR POST", "GET /queue"}
    assert outcome.answers["MLLP AA"] >= 50  # every connection answered at least once
    assert len(outcome.samples) >= 2 and all(s.serve and s.pipeline for s in outcome.samples)
