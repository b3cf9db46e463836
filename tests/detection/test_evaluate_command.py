"""`referral-gateway detection evaluate`: reading a corpus, the figures and the exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from referral_gateway.domain.errors import CorpusError
from referral_gateway.domain.evaluation import read_corpus
from referral_gateway.entrypoints.cli import main

HEADER = "id\tfield\tlabel\tcategory\tcontext\tcodes\ttext\n"
SMALL = HEADER + (
    "a1\tnte\tassault\tbladed\tplain\t-\tstabbed in thigh outside shop\n"
    "a2\tfhir_reason\tpossible\tother\tuncertain\t-\t?assault, found in street\n"
    "a3\tpv2_3\tassault\tother\timplicit\t-\tpt says her lip is sore today\n"
    "a4\tobx_cc\tnot\t-\tmedical\t-\tchest pain 2/7\n"
    "a5\tcondition_text\tnot\t-\tanimal\t-\tassaulted nobody, wrist pain\n"
    "a6\tdg1_desc\tnot\t-\tcoded\tecds:52684005\tinjury to face\n"
)


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    corpus = tmp_path / "small.tsv"
    corpus.write_text(SMALL, encoding="utf-8")
    status = main(["detection", "evaluate", str(corpus), *args])
    return status, capsys.readouterr().out


def test_evaluate_prints_the_scores_confusion_and_each_error_with_its_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(tmp_path, capsys)

    # a1, a2 found; a3 missed (nothing to find); a5 and a6 are false alarms.
    assert status == 0
    assert "overall             6  TP   2  FP   2  FN   1  TN   1   P 0.500  R 0.667" in out
    assert "  assault                                 1         0     1" in out
    assert "  possible                                0         1     0" in out
    assert "FN a3 [pv2_3, implicit, assault]" in out
    assert "FP a6 [dg1_desc, coded, not]" in out
    assert "fired: assault ecds_intent:52684005" in out
    assert "resting only on unverified ECDS injury-intent codes: 1 (a6)" in out


def test_evaluate_fails_when_a_file_falls_below_a_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, capsys, "--min-recall", "0.6")[0] == 0
    assert run(tmp_path, capsys, "--min-recall", "0.7")[0] == 1
    assert run(tmp_path, capsys, "--min-precision", "0.6")[0] == 1


def test_a_malformed_corpus_line_is_named() -> None:
    with pytest.raises(CorpusError, match="line 2: label 'maybe'"):
        read_corpus(HEADER + "b1\tnte\tmaybe\tother\tplain\t-\ttext\n")
    with pytest.raises(CorpusError, match="line 2: field 'pv1'"):
        read_corpus(HEADER + "b1\tpv1\tnot\t-\tplain\t-\ttext\n")
