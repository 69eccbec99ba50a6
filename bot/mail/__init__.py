"""Hand-off of AMI responses to the ARS: outbox, e-mail rendering, PDF fiche, transports, digest (the outbox worker is bot/worker.py)."""
