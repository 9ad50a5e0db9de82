"""Alembic's environment for every queue: run the revisions on the connection given.

``workerkit._migrations`` passes the connection and the queue's own version table in
``config.attributes``; there is no ``alembic.ini`` and nothing for a service to copy.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    version_table=config.attributes["version_table"],
    # SQLite alters tables by copying them; batch mode does that for op.alter_column etc.
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
