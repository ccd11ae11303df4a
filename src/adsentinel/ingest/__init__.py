"""Getting data in: CSV import, Meta Marketing API sync, synthetic demo data."""
