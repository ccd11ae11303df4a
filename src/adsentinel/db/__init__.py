"""Storage: SQLAlchemy models, engine and session factories, Alembic migrations."""
