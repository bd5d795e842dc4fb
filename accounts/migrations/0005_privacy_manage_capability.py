"""The privacy.manage capability (subject export and erasure, revealing a masked value), granted by default to
compliance officers and operators of every existing tenant (DESIGN.md's matrix). New tenants get it from
accounts.roles.DEFAULT_MATRIX."""

from django.db import migrations

ROLES = ("compliance_officer", "operator")


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    TenantRoleGroup = apps.get_model("accounts", "TenantRoleGroup")
    links = list(TenantRoleGroup.objects.filter(role__in=ROLES))
    if not links:
        return
    content_type, _ = ContentType.objects.get_or_create(app_label="accounts", model="tenant")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="privacy_manage",
        defaults={"name": "Subject export and erasure, revealing a masked personal value"})
    for link in links:
        GroupObjectPermission.objects.get_or_create(permission=permission, group_id=link.group_id,
                                                    content_type=content_type, object_pk=str(link.tenant_id))


def revoke(apps, schema_editor):
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    GroupObjectPermission.objects.filter(permission__codename="privacy_manage",
                                         content_type__app_label="accounts").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_seal_totp_seeds'),
        ('guardian', '0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='tenant',
            options={'ordering': ['slug'], 'permissions': [('escalation_view', 'View escalations assigned to own role'), ('escalation_view_all', 'View all escalations of the tenant'), ('escalation_decide', 'Decide escalations assigned to own role'), ('escalation_acknowledge', 'Acknowledge escalations assigned to own role'), ('escalation_create_manual', 'Create escalations by hand'), ('policy_manage', 'Manage policies, trigger rules and webhooks'), ('audit_view', 'View the audit log and reports'), ('audit_export', 'Export escalations, decisions and audit events'), ('privacy_manage', 'Subject export and erasure, revealing a masked personal value')]},
        ),
        migrations.RunPython(grant, revoke),
    ]
