"""visit number and bay at rest: the visit key becomes a blind index, the bay a ciphertext

Revision ID: 0008_visit_bay_encrypted
Revises: 0007_account_changes

`attendance.visit_key` held the plain visit number (PV1-19, Encounter.identifier) and
`attendance.bay` the plain bay. Existing rows are rewritten with the key ring that
`migrate(engine, keyring=...)` hands in: the visit key as the HMAC blind index of
"<site>|<visit key>" (purpose "visit_number"), the bay encrypted into `bay_enc` (context
"attendance.bay"); then `bay` is dropped. A database with attendances cannot take this step
without the key ring: it stops and says so before it changes anything (SQLite does not
roll back schema changes, so the checks come first).
"""

from alembic import context, op
import sqlalchemy as sa

from consent.errors import KeyRingError


revision = '0008_visit_bay_encrypted'
down_revision = '0007_account_changes'
branch_labels = None
depends_on = None

# fixed here as they were when this step was written (storage.attendances uses the same)
VISIT_PURPOSE = "visit_number"
BAY_CONTEXT = "attendance.bay"
IDENTITY_CONTEXT = "attendance.identity"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, site, visit_key, bay, identity_enc FROM attendance ORDER BY id")
    ).all()
    new_values = []
    if rows:  # everything is worked out and checked before the schema is touched
        keyring = context.config.attributes.get("keyring")
        if keyring is None:
            raise KeyRingError(
                "The database holds attendances whose visit numbers and bays are now to be "
                "encrypted, which needs the key ring: run `referral-gateway serve` (or "
                "`replay`) once with the usual key ring, then this command again."
            )
        sample = next((r.identity_enc for r in rows if r.identity_enc is not None), None)
        if sample is not None:
            keyring.decrypt(bytes(sample), context=IDENTITY_CONTEXT)  # the right ring, or stop
        new_values = [
            {
                "id": r.id,
                "visit_key": keyring.blind_index(f"{r.site}|{r.visit_key}", purpose=VISIT_PURPOSE),
                "bay_enc": keyring.encrypt_text(r.bay, context=BAY_CONTEXT) if r.bay else None,
            }
            for r in rows
        ]
    op.add_column('attendance', sa.Column('bay_enc', sa.LargeBinary(), nullable=True))
    if new_values:
        update = sa.text(
            "UPDATE attendance SET visit_key = :visit_key, bay_enc = :bay_enc WHERE id = :id"
        ).bindparams(sa.bindparam("bay_enc", type_=sa.LargeBinary()))
        conn.execute(update, new_values)
    op.drop_column('attendance', 'bay')


def downgrade() -> None:
    raise NotImplementedError("visit numbers and bays are not put back in plain text")
