"""Fewer index entries per client, so that an import writes less: the card number is found through
search_card (its folded key), and the foreign keys' indexes leave out the clients without one.

The new indexes are built before the old ones go, so that no query is ever left without one.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("clients", "0002_search_keys"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        *(migrations.AddIndex(
            model_name="client",
            index=models.Index(condition=models.Q((f"{name}__isnull", False)), fields=[name], name=f"client_{name}_idx"),
        ) for name in ("ad_source", "card_type", "manager")),
        migrations.AlterField(
            model_name="client",
            name="ad_source",
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to="clients.adsource", verbose_name="advertising source"),
        ),
        migrations.AlterField(
            model_name="client",
            name="card_type",
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to="clients.cardtype", verbose_name="card type"),
        ),
        migrations.AlterField(
            model_name="client",
            name="manager",
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="managed_clients", to=settings.AUTH_USER_MODEL, verbose_name="responsible manager"),
        ),
        migrations.RemoveIndex(model_name="client", name="client_card_number_idx"),
    ]
