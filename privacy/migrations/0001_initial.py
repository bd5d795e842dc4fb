"""Data subjects, their wrapped data keys, blind-index identifiers, the records they appear in, and each
tenant's privacy settings (privacy.models)."""

import django.db.models.deletion
import privacy.models
import trustguard.ids
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0005_privacy_manage_capability'),
    ]

    operations = [
        migrations.CreateModel(
            name='PrivacySettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('legal_hold_mode', models.CharField(choices=[('refuse', 'Refuse the erasure, naming the held records'), ('pseudonymise', 'Erase what is free, pseudonymise what is held, shred it when the hold ends')], default='refuse', max_length=16)),
                ('aml_retention_days', models.PositiveIntegerField(default=2557)),
                ('aml_types', models.JSONField(blank=True, default=privacy.models.default_aml_types, help_text='Escalation types whose cases are AML records (legal hold).')),
                ('personal_payload_fields', models.JSONField(blank=True, default=privacy.models.default_personal_payload_fields, help_text='Top-level payload keys holding personal data: sealed like the contact.')),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('tenant', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='privacy_settings', to='accounts.tenant')),
            ],
            options={
                'verbose_name_plural': 'privacy settings',
            },
        ),
        migrations.CreateModel(
            name='Subject',
            fields=[
                ('id', models.UUIDField(default=trustguard.ids.uuid7, editable=False, primary_key=True, serialize=False)),
                ('wrapped_key', models.TextField(blank=True, editable=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('erased_at', models.DateTimeField(blank=True, null=True)),
                ('held_until', models.DateTimeField(blank=True, null=True)),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.tenant')),
            ],
        ),
        migrations.CreateModel(
            name='SubjectIdentifier',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('email', 'Email'), ('phone', 'Phone')], max_length=8)),
                ('digest', models.CharField(max_length=64)),
                ('subject', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='identifiers', to='privacy.subject')),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.tenant')),
            ],
        ),
        migrations.CreateModel(
            name='SubjectRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('record_type', models.CharField(max_length=32)),
                ('record_id', models.CharField(max_length=64)),
                ('sealed', models.JSONField(blank=True, default=dict)),
                ('subject', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='records', to='privacy.subject')),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.tenant')),
            ],
        ),
        migrations.AddIndex(
            model_name='subject',
            index=models.Index(fields=['tenant', 'created_at'], name='privacy_subject_tenant_idx'),
        ),
        migrations.AddIndex(
            model_name='subject',
            index=models.Index(condition=models.Q(('erased_at__isnull', True), ('held_until__isnull', False)), fields=['held_until'], name='privacy_subject_hold_idx'),
        ),
        migrations.AddConstraint(
            model_name='subjectidentifier',
            constraint=models.UniqueConstraint(fields=('tenant', 'kind', 'digest'), name='privacy_identifier_unique'),
        ),
        migrations.AddIndex(
            model_name='subjectrecord',
            index=models.Index(fields=['tenant', 'record_type', 'record_id'], name='privacy_record_lookup_idx'),
        ),
        migrations.AddConstraint(
            model_name='subjectrecord',
            constraint=models.UniqueConstraint(fields=('subject', 'record_type', 'record_id'), name='privacy_record_unique'),
        ),
    ]
