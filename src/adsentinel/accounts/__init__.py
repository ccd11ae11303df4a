"""Ad accounts: finding the account a command names, its settings, and adding, listing,
enabling and discovering the accounts that sync from Meta."""
