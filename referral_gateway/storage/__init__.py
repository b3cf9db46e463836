"""Persistence through SQLModel/SQLAlchemy: SQLite by default, PostgreSQL when configured."""
