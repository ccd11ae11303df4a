"""Getting data in: insights files (CSV, XLSX exports) and warehouse tables, imported into the
database."""
