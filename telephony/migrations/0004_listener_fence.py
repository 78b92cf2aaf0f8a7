"""`listener_fence`, PostgreSQL's side of `Lease.fence`: the lease row locked on the writer's epoch, or an error that
rolls back everything the writer sent with it (telephony/leader.py)."""

from django.db import migrations

FENCE = """
CREATE OR REPLACE FUNCTION listener_fence(lease_name varchar, lease_holder varchar, lease_epoch bigint, ttl interval)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {table} SET expires_at = statement_timestamp() + ttl
    WHERE name = lease_name AND holder = lease_holder AND epoch = lease_epoch;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'listener lease % no longer held at epoch %', lease_name, lease_epoch USING ERRCODE = 'SC001';
    END IF;
END $$
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("telephony", "ListenerLease")._meta.db_table)
        schema_editor.execute(FENCE.format(table=table), params=None)  # no parameters: its % are RAISE's own


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS listener_fence(varchar, varchar, bigint, interval)")


class Migration(migrations.Migration):
    dependencies = [("telephony", "0003_smart_transfer")]
    operations = [migrations.RunPython(create, drop)]
