"""The knowledge base: sources, provenance, segmentation, curated layer."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.qa.knowledge import DEFAULT_KNOWLEDGE_DIR, check_knowledge, load_knowledge
from bot.qa.segment import segment
from bot.qa.textnorm import (
    quote_in,
    quote_pieces,
    raw_tokens,
    scorer_normalize,
    scorer_plain,
    stem,
)
from tests.qa.conftest import SHARED

SOURCE_IDS = {
    "ars-constituer-esp-cpts",
    "ameli-cpts-mode-emploi",
    "fiche-synthese-esp",
    "instruction-dgos-2016-392",
    "ami-cpts-bretagne-2021",
}


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


def test_the_five_sources_and_their_provenance_are_in_the_repository(kb) -> None:
    assert set(kb.documents) == SOURCE_IDS
    for doc in kb.documents.values():
        assert doc.title and doc.short_title and doc.publisher and doc.notes
        assert len(doc.text) > 5000


@pytest.mark.skipif(not (SHARED / "sources").exists(), reason="shared/ not present")
def test_sources_are_copied_unchanged_from_shared() -> None:
    for path in (SHARED / "sources").iterdir():
        if path.stem in SOURCE_IDS:
            ours = DEFAULT_KNOWLEDGE_DIR / "sources" / path.name
            assert ours.read_bytes() == path.read_bytes(), path.name


def test_provenance_records_the_two_traps(kb) -> None:
    ars = kb.documents["ars-constituer-esp-cpts"]
    assert ars.not_ars_bretagne
    assert "15 000" in ars.notes and "24 h" in ars.notes and "GCS SARA" in ars.notes
    assert "pas l'ARS Bretagne" in ars.short_title
    fiche = kb.documents["fiche-synthese-esp"]
    assert "item 9" in fiche.notes and "inventer" in fiche.notes


def test_every_curated_quote_is_verbatim_and_every_cited_passage_exists(kb) -> None:
    assert check_knowledge(kb) == []


def test_quotes_are_checked_with_the_scorer_normalisation(kb) -> None:
    doc = kb.documents["fiche-synthese-esp"].plain
    # Markdown emphasis, accents, case and curly apostrophes do not matter; "…" is a gap
    assert quote_in("FONDS D’INTERVENTION RÉGIONAUX (FIR)", doc)
    assert quote_in("Aucun statut juridique particulier … Elles peuvent prendre la forme", doc)
    assert not quote_in("Aucun statut juridique spécifique n'est prévu", doc)
    assert quote_pieces("court … trop") == []


def test_passage_ids_are_unique_and_follow_the_documents_structure(kb) -> None:
    ids = list(kb.passages)
    assert len(ids) == len(set(ids))
    for pid, p in kb.passages.items():
        assert re.fullmatch(r"[a-z0-9-]+#[A-Za-z0-9.-]+", pid), pid
        assert pid.startswith(p.doc_id + "#")
    expected = {
        "instruction-dgos-2016-392#I.A.objet.2": "I. – ESP et CPTS › A. – Les ESP › Objet, initiative et création",
        "instruction-dgos-2016-392#I.B.formalisation.3": "I. – ESP et CPTS › B. – Les CPTS › Formalisation et contractualisation",
        "instruction-dgos-2016-392#annexe.territoire": "Annexe – tableau récapitulatif",
        "ameli-cpts-mode-emploi#etapes.n7": "Les grandes étapes de la création du projet de santé",
        "ars-constituer-esp-cpts#cpts.financement.construction.1": "La CPTS, c'est quoi ? › Financement du projet › Construction et rédaction du projet de santé",
        "ami-cpts-bretagne-2021#principes.territoire.6": "Les principes d'une CPTS › Un territoire",
        "fiche-synthese-esp#annexe.n9": "Annexe : liste minimale des éléments à fournir dans un projet de santé d'ESP",
    }
    for pid, section in expected.items():
        assert kb.passages[pid].section == section


def test_passage_ids_do_not_move_when_an_unrelated_section_changes(kb) -> None:
    doc = kb.documents["instruction-dgos-2016-392"]
    spec = yaml.safe_load((DEFAULT_KNOWLEDGE_DIR / "structure.yaml").read_text())[doc.id]
    before = {p.id: p.text for p in segment(doc.id, doc.title, doc.text, spec)}
    edited = doc.text.replace(
        "Je vous invite à signaler à la DGOS",
        "Paragraphe ajouté pour le test.\n\nJe vous invite à signaler à la DGOS",
    )
    after = {p.id: p.text for p in segment(doc.id, doc.title, edited, spec)}
    for pid, text in before.items():
        if not pid.startswith(f"{doc.id}#III."):
            assert after[pid] == text, pid


def test_a_missing_heading_is_reported_instead_of_shifting_ids(kb) -> None:
    doc = kb.documents["ami-cpts-bretagne-2021"]
    spec = yaml.safe_load((DEFAULT_KNOWLEDGE_DIR / "structure.yaml").read_text())[doc.id]
    with pytest.raises(ValueError, match="heading not found"):
        segment(doc.id, doc.title, doc.text.replace("LES CPTS EN REGION BRETAGNE", "X"), spec)


def test_segmentation_keeps_every_paragraph_of_the_sources(kb) -> None:
    structure = yaml.safe_load((DEFAULT_KNOWLEDGE_DIR / "structure.yaml").read_text())
    for doc in kb.documents.values():
        pieces = [p.raw for p in kb.passages.values() if p.doc_id == doc.id]
        pieces += [h["text"] for h in structure[doc.id]]  # heading lines
        joined = scorer_plain(" ".join(pieces))
        for line in doc.text.splitlines():
            words = scorer_plain(line).strip()
            if len(words) > 20:
                assert words[:40] in joined, (doc.id, line[:60])


def test_the_fiche_stops_at_item_9_and_no_answer_completes_it(kb) -> None:
    last = kb.passages["fiche-synthese-esp#annexe.n9"]
    assert last.text.endswith("(phase de construction,")
    topic = kb.topics["esp-liste-annexe"]
    assert "s'interrompt" in topic.answer


def test_the_glossary_covers_the_acronyms_and_says_where_they_appear(kb) -> None:
    acronyms = {g.acronym.upper() for g in kb.glossary}
    for needed in [
        "ESP",
        "CPTS",
        "MSP",
        "PTA",
        "ACI",
        "FIR",
        "URPS",
        "GHT",
        "SAS",
        "ALD",
        "CPAM",
        "LMSS",
        "PRS",
        "CSP",
        "DGOS",
        "MSS",
        "CMU-C",
        "PMI",
        "SSIAD",
        "EHPAD",
    ]:
        assert needed in acronyms
    for g in kb.glossary:
        assert g.appears_in and set(g.appears_in) <= SOURCE_IDS
        for doc_id in g.appears_in:
            text = scorer_normalize(kb.documents[doc_id].text)
            assert scorer_normalize(g.acronym) in text, (g.acronym, doc_id)


def test_the_comparison_table_has_the_rows_of_the_annex(kb) -> None:
    criteria = [row.criterion for row in kb.comparison]
    assert criteria == [
        "Références réglementaires",
        "Composition",
        "Forme juridique",
        "Territoire",
        "Objet",
        "Projet de santé",
        "Contractualisation",
    ]
    territory = kb.comparison[3]
    assert "patientèle" in territory.esp and "population" in territory.cpts


def test_topics_have_several_question_variants_and_a_label(kb) -> None:
    for t in kb.topics.values():
        if t.origin != "glossary.yaml":
            assert len(t.questions) >= 4, t.id
        assert t.label.endswith(("?", "»", ")")) or t.label, t.id


@pytest.mark.skipif(not (SHARED / "eval" / "qa_dev.yaml").exists(), reason="shared/ not present")
def test_no_dev_question_is_copied_into_the_knowledge_base(kb) -> None:
    dev = yaml.safe_load((SHARED / "eval" / "qa_dev.yaml").read_text(encoding="utf-8"))
    dev_qs = {scorer_normalize(i["q"]).strip(" ?") for i in dev["in_scope"] + dev["out_of_scope"]}
    ours = {
        scorer_normalize(q).strip(" ?") for t in kb.topics.values() for q in (t.label, *t.questions)
    }
    assert not dev_qs & ours


def test_no_off_domain_word_shares_its_stem_with_another_word_of_the_texts(kb) -> None:
    """« loyer » and « loi » share the stem « loi »: an off-domain word whose stem is also
    another word of the texts would push the texts' own word (« la loi ») out of the domain."""
    by_stem: dict[str, set[str]] = {}
    for document in kb.documents.values():
        for token in raw_tokens(document.plain):
            by_stem.setdefault(stem(token), set()).add(token)
    lexicon = yaml.safe_load((DEFAULT_KNOWLEDGE_DIR / "curated" / "lexicon.yaml").read_text())
    for word in lexicon["off_domain_terms"]:
        for token in raw_tokens(word):
            forms = {token, token + "s", token + "e", token + "es"}
            assert not by_stem.get(stem(token), set()) - forms, (word, by_stem[stem(token)])
    assert stem("loyer") == stem("loi")  # why « loyer » is left out of the list


def test_a_curated_answer_that_names_a_text_cites_it(kb) -> None:
    """« selon la page d'une ARS… », « (Ameli) », « la fiche de synthèse »: an answer that
    attributes a fact to a text cites a passage of that text, so the source line tells the
    reader where to check it (glossary entries list the texts an acronym appears in)."""
    marks = {
        "ars-constituer-esp-cpts": r"page d.une ARS",
        "fiche-synthese-esp": r"\bfiche de synth",
        "ameli-cpts-mode-emploi": r"\bAmeli\b",
    }
    for topic in kb.topics.values():
        if topic.origin == "glossary.yaml":
            continue
        cited = {s.passage_id.split("#")[0] for s in topic.sources}
        for doc, mark in marks.items():
            assert not re.search(mark, topic.answer) or doc in cited, (topic.id, doc)


def test_ordinals_are_read_as_words_so_their_sms_spellings_apply() -> None:
    """« 2e avenant », « 1er échelon », « 2nd recours »: the ordinal is one token, expanded like
    the other SMS spellings (the tokenizer used to split « 2e » into « 2 » and « e »)."""
    from bot.qa.textnorm import raw_tokens

    assert raw_tokens("le 2e avenant") == ["le", "deuxieme", "avenant"]
    assert raw_tokens("1er échelon, 2nd recours") == ["premier", "echelon", "second", "recours"]
    assert raw_tokens("48h, 20 000 habitants") == ["48", "h", "20000", "habitants"]
