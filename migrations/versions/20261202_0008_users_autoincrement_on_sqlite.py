"""users: AUTOINCREMENT on SQLite, so a deleted account's id is never reused

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:30:00.000000

Without AUTOINCREMENT, SQLite hands out max(id) + 1: delete the newest account, register
another, and the new account gets the old id, so the deleted account's tokens would name
it. With it, SQLite keeps the highest id ever used (in `sqlite_sequence`). PostgreSQL's
sequences never go back: nothing to do there. The table is rebuilt (batch mode) with
its rows; env.py switches foreign keys off meanwhile, so no child row is cascaded away.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _rebuild_users(autoincrement):
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table(
        'users', recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}
    ):
        pass


def upgrade():
    _rebuild_users(True)


def downgrade():
    _rebuild_users(False)
