"""Hand-off of AMI responses to the ARS: outbox, e-mail rendering, PDF fiche, SMTP worker, digest."""
