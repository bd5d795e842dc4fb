"""PostgreSQL: retention prunes through `audit_prune_prefix`, a SECURITY DEFINER function owned by the tables' owner.

The application's database role may only SELECT and INSERT audit events (docs/AUDIT.md, "Least privilege"), so it
cannot DELETE; this function is the one way it removes events, and only a prefix that a retention checkpoint written
just before covers, whole and linked (seq without gaps, each prev_hash the hash before it, the last hash the
checkpoint's). The HMACs were verified by the caller, which holds the audit key; the database does not. The
DELETE trigger of 0002 still applies. search_path is pinned to the schema it is created in (a definer's rights must
not follow a caller's search_path; no percent sign: the SQL goes through the driver's placeholders). The SQL is
frozen here, as migrations are.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION audit_prune_prefix(p_chain_key text, p_through_seq bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_hash text;
    v_start bigint;
    v_count bigint;
    v_deleted bigint;
BEGIN
    SELECT c.hash INTO v_hash FROM audit_auditcheckpoint c WHERE c.chain_key = p_chain_key AND c.seq = p_through_seq;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = 'audit_prune_prefix: no retention checkpoint of ' || p_chain_key || ' at #' || p_through_seq;
    END IF;
    SELECT COALESCE(MAX(c.seq), 0) INTO v_start FROM audit_auditcheckpoint c
        WHERE c.chain_key = p_chain_key AND c.seq < p_through_seq;
    SELECT count(*) INTO v_count FROM audit_auditevent e
        WHERE e.chain_key = p_chain_key AND e.seq > v_start AND e.seq <= p_through_seq;
    IF v_count <> p_through_seq - v_start
       OR NOT EXISTS (SELECT 1 FROM audit_auditevent e
                      WHERE e.chain_key = p_chain_key AND e.seq = p_through_seq AND e.hash = v_hash)
       OR EXISTS (SELECT 1 FROM audit_auditevent a JOIN audit_auditevent b
                      ON b.chain_key = a.chain_key AND b.seq = a.seq + 1
                  WHERE a.chain_key = p_chain_key AND a.seq > v_start AND a.seq < p_through_seq
                    AND b.prev_hash <> a.hash) THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = 'audit_prune_prefix: ' || p_chain_key || ' #' || (v_start + 1) || '..#' || p_through_seq
                      || ' is not a whole, linked prefix ending at the checkpoint''s hash';
    END IF;
    DELETE FROM audit_auditevent e WHERE e.chain_key = p_chain_key AND e.seq > v_start AND e.seq <= p_through_seq;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;
DO $$ BEGIN
    EXECUTE 'ALTER FUNCTION audit_prune_prefix(text, bigint) SET search_path = '
            || quote_ident(current_schema()) || ', pg_temp';
END $$;
REVOKE ALL ON FUNCTION audit_prune_prefix(text, bigint) FROM PUBLIC;
"""
DROP = "DROP FUNCTION IF EXISTS audit_prune_prefix(text, bigint);"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_keyed_chain")]
    operations = [migrations.RunPython(create, drop)]
