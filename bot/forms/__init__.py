"""The forms declared in `dialogues/*.yaml` (the AMI response, the orientation guide).

One module per concept: `spec` (the YAML as states and transitions), `conditions`, `machine`
(the `transitions` Machine, one per spec), `draft` (typed progress), `answers` (storing and
reading answers), `actions` (the buttons' mini-language), `handlers` (a turn's events change the
draft and report), `review`, `outcomes`, `prompts`, `citations`, `ports` (what a form needs
from outside) and `runner` (the engine's `Flow`: the only maker of replies).
"""
