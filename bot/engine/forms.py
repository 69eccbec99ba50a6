"""Moved to `bot.forms` (one module per concept); these names stay for code not yet updated."""

from __future__ import annotations

from bot.forms.answers import PLACEHOLDER
from bot.forms.citations import cite, short_section
from bot.forms.runner import FormFlow, load_flows
from bot.forms.spec import (
    AMI_FORM,
    DONE,
    QUESTION_KINDS,
    REVIEW,
    STEP_KINDS,
    Choice,
    FormSpec,
    Step,
    _spec_of,
    form_texts,
    load_specs,
    objective_labels,
    practice_labels,
    spec_of,
)

__all__ = [
    "AMI_FORM",
    "DONE",
    "PLACEHOLDER",
    "QUESTION_KINDS",
    "REVIEW",
    "STEP_KINDS",
    "Choice",
    "FormFlow",
    "FormSpec",
    "Step",
    "_spec_of",
    "cite",
    "form_texts",
    "load_flows",
    "load_specs",
    "objective_labels",
    "practice_labels",
    "short_section",
    "spec_of",
]
