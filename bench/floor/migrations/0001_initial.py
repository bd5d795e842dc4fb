from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="FloorEscalation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("reason", models.CharField(max_length=500)),
                ("source_system", models.CharField(max_length=64)),
                ("source_entity_type", models.CharField(max_length=64)),
                ("source_entity_id", models.CharField(max_length=128)),
                ("source_url", models.URLField(blank=True)),
                ("amount_minor", models.BigIntegerField(null=True)),
                ("currency", models.CharField(blank=True, max_length=3)),
                ("urgency", models.CharField(default="normal", max_length=16)),
                ("payload", models.JSONField(default=dict)),
                ("requested_by", models.EmailField(blank=True, max_length=254)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
