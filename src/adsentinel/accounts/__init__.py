"""Ad accounts: finding the account a command names, and the accounts' own settings."""
