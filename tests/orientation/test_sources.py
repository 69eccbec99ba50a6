"""Every passage the guide cites exists, every «quote» is verbatim, every message fits a phone."""

from __future__ import annotations

import re

import pytest

from bot.forms.citations import short_section
from bot.forms.ports import FormPorts
from bot.forms.runner import FormFlow
from bot.qa.textnorm import quote_in, scorer_plain
from tests.orientation.guide import OUTCOMES, QUESTIONS, SPEC

QUOTE = re.compile(r"«\s*(.+?)\s*»", re.S)
# How the guide names each document next to a quote (never the unnamed ARS page as Bretagne's).
NAMES = {
    "instruction-dgos-2016-392": ("Instruction DGOS", "instruction", "même instruction"),
    "fiche-synthese-esp": ("Fiche de synthèse ESP", "même fiche"),
    "ameli-cpts-mode-emploi": ("Ameli",),
    "ami-cpts-bretagne-2021": (
        "AMI CPTS Bretagne",
        "AMI de l'ARS Bretagne",
        "l'AMI",
        "En Bretagne",
    ),
    "ars-constituer-esp-cpts": ("page d'une ARS",),
}
PHONE_SIZED = 900
TEXTS = [(s.id, "prompt", s.prompt) for s in SPEC.steps] + [
    (s.id, "why", s.why) for s in QUESTIONS.values()
]


@pytest.fixture(scope="module")
def kb(qa_service):  # type: ignore[no-untyped-def]
    return qa_service.kb


@pytest.mark.parametrize("step", SPEC.steps, ids=lambda s: s.id)
def test_every_cited_passage_exists_in_the_knowledge_base(qa_service, step):
    if step.kind == "outcome" or step.why:
        assert step.sources, f"{step.id} cites no passage"
    for passage_id in step.sources:
        assert qa_service.passage(passage_id) is not None, passage_id


@pytest.mark.parametrize(("step_id", "key", "text"), TEXTS, ids=lambda v: str(v)[:24])
def test_every_quote_is_verbatim_in_a_cited_passage_and_in_its_source_text(kb, step_id, key, text):
    step = SPEC.by_id[step_id]
    passages = [kb.passages[i] for i in step.sources]
    for quote in QUOTE.findall(text):
        holders = [p for p in passages if quote_in(quote, scorer_plain(p.raw or p.text))]
        assert holders, f"{step_id}.{key}: « {quote} » is in none of {step.sources}"
        for passage in holders:
            assert quote_in(quote, kb.documents[passage.doc_id].plain)
        named = [n for p in holders for n in NAMES[p.doc_id]]
        assert any(name in text for name in named), f"« {quote} » does not name its document"


def test_every_cited_passage_is_quoted_or_named_in_its_step():
    for step in SPEC.steps:
        text = step.prompt + step.why
        for passage_id in step.sources:
            doc = passage_id.split("#")[0]
            assert any(name in text for name in NAMES[doc]), (step.id, passage_id)


@pytest.fixture(scope="module")
def flow(qa_service):  # type: ignore[no-untyped-def]
    return FormFlow(SPEC, FormPorts(qa=qa_service))


@pytest.mark.parametrize("step", list(OUTCOMES.values()), ids=lambda s: s.id)
def test_each_outcome_reply_is_phone_sized_sources_line_included(flow, step):
    reply = flow.citations.with_sources(step.prompt, step.sources)
    assert len(reply) <= PHONE_SIZED, len(reply)


@pytest.mark.parametrize("step", SPEC.steps, ids=lambda s: s.id)
def test_sources_are_shown_as_document_names_and_sections_never_as_ids(qa_service, flow, step):
    text = step.prompt if step.kind == "outcome" else step.why
    shown = flow.citations.with_sources(text, step.sources)[len(text) :]
    assert shown.startswith("\n\n📚 Sources :\n• ")
    assert "#" not in shown and "instruction-dgos" not in shown and "ami-cpts" not in shown
    lines = shown.strip().splitlines()[1:]
    documents = list(dict.fromkeys(qa_service.passage(i).doc_id for i in step.sources))
    assert len(lines) == len(documents)  # one line per document, in order of citation
    for line, doc_id in zip(lines, documents, strict=True):
        assert line.startswith("• " + SPEC.documents[doc_id])


def test_a_citation_names_the_document_and_its_sections_once(flow):
    assert short_section("I. – ESP et CPTS › A. – Les ESP › Objet, initiative et création") == (
        "I. A. Les ESP"
    )
    assert short_section("Les principes d'une CPTS › Un territoire") == "Un territoire"
    esp = OUTCOMES["esp"]
    assert flow.citations.line(esp.sources) == (
        "📚 Sources :\n"
        "• Instruction DGOS du 2 décembre 2016 — I. A. Les ESP\n"
        "• Fiche de synthèse ESP — Composition ; Statut juridique ; Textes de références"
    )


@pytest.mark.parametrize(("step_id", "key", "text"), TEXTS, ids=lambda v: str(v)[:24])
def test_questions_and_help_are_phone_sized(step_id, key, text):
    assert len(text) < PHONE_SIZED, (step_id, key, len(text))


def test_the_unnamed_ars_15000_euros_is_never_presented():
    for _, _, text in TEXTS:
        assert "15 000" not in text and "15000" not in text


def test_the_unnamed_ars_page_is_never_presented_as_ars_bretagne():
    for step in SPEC.steps:
        for text in (step.prompt, step.why):
            for quote in QUOTE.findall(text):
                if "1 médecin généraliste" in quote or "1er échelon" in quote:
                    assert (
                        "région non nommée" in text and "Bretagne" not in text.split(quote)[1][:40]
                    )


def test_the_brittany_contact_is_the_one_of_the_ami(kb):
    contact = kb.passages["ami-cpts-bretagne-2021#contact.1"].text
    for step in OUTCOMES.values():
        if "Ronan Derieux" in step.prompt:
            assert "02.22.06.73.54" in step.prompt and "02.22.06.73.54" in contact
            assert "ronan.derieux@ars.sante.fr" in step.prompt
