"""The dialogue engine: turns, flows, forms, texts and validators (no mail, no storage details)."""
