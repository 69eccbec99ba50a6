"""Front ends: thin translators between a medium and the dialogue engine."""
