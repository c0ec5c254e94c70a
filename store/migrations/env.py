"""Alembic environment: migrations run on the connection that mailwarden hands in."""

import mailwarden.store.models  # noqa: F401  (registers the tables)
from alembic import context
from sqlmodel import SQLModel

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for `alembic` run by hand
    raise SystemExit("run migrations with `mailwarden db upgrade`")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
