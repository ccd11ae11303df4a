"""Training: the nightly Isolation Forests of an account's entities, written to the model store
(:mod:`.service`), the state the hourly detection reads."""
