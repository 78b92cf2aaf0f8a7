"""Stored search keys (ё folded as е, phones and cards reversed for their last characters) and their indexes.

Keys of empty phones and cards are NULL, outside their partial indexes.
"""

from django.db import migrations, models

PHONE_FIELDS = ("phone_mobile", "phone_home", "phone_work")


def fold(text):
    return (text or "").casefold().replace("ё", "е")


def digits_reversed(phone):
    return "".join(ch for ch in phone or "" if ch in "0123456789")[::-1] or None


def fill_search_keys(apps, schema_editor):
    """Every existing client's keys, as clients.models.search_columns makes them (frozen here)."""
    Client = apps.get_model("clients", "Client")
    table = schema_editor.quote_name(Client._meta.db_table)
    sql = (f"UPDATE {table} SET search_name = %s, search_first_name = %s, phone_mobile_reversed = %s, phone_home_reversed = %s, "
           "phone_work_reversed = %s, search_card = %s, search_card_reversed = %s WHERE id = %s")
    rows = Client.objects.order_by("pk").values_list("pk", "last_name", "first_name", "middle_name", *PHONE_FIELDS, "card_number")
    batch = []
    with schema_editor.connection.cursor() as cursor:
        for pk, last, first, middle, mobile, home, work, card in rows.iterator(chunk_size=5000):
            card = fold(card) or None
            name = fold(" ".join(part for part in (last, first, middle) if part))
            batch.append((name, fold(first), digits_reversed(mobile), digits_reversed(home), digits_reversed(work), card, card and card[::-1], pk))
            if len(batch) == 5000:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


def prefix_index(name, field, **kwargs):
    return models.Index(fields=[field], name=name, opclasses=["varchar_pattern_ops"], **kwargs)


class Migration(migrations.Migration):

    dependencies = [
        ("clients", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="client",
            name="search_first_name",
            field=models.CharField(blank=True, editable=False, max_length=100),
        ),
        migrations.AddField(
            model_name="client",
            name="phone_mobile_reversed",
            field=models.CharField(blank=True, editable=False, max_length=16, null=True),
        ),
        migrations.AddField(
            model_name="client",
            name="phone_home_reversed",
            field=models.CharField(blank=True, editable=False, max_length=16, null=True),
        ),
        migrations.AddField(
            model_name="client",
            name="phone_work_reversed",
            field=models.CharField(blank=True, editable=False, max_length=16, null=True),
        ),
        migrations.AddField(
            model_name="client",
            name="search_card",
            field=models.CharField(blank=True, editable=False, max_length=50, null=True),
        ),
        migrations.AddField(
            model_name="client",
            name="search_card_reversed",
            field=models.CharField(blank=True, editable=False, max_length=50, null=True),
        ),
        migrations.RunPython(fill_search_keys, migrations.RunPython.noop),
        migrations.AddIndex(model_name="client", index=prefix_index("client_search_name_idx", "search_name")),
        migrations.AddIndex(model_name="client", index=prefix_index("client_search_first_name_idx", "search_first_name")),
        *(migrations.AddIndex(
            model_name="client",
            index=prefix_index(f"client_{name.removeprefix('phone_')}_rev_idx", f"{name}_reversed",
                               condition=models.Q((f"{name}_reversed__isnull", False))),
        ) for name in PHONE_FIELDS),
        migrations.AddIndex(model_name="client", index=prefix_index(
            "client_search_card_idx", "search_card", condition=models.Q(("search_card__isnull", False)))),
        migrations.AddIndex(model_name="client", index=prefix_index(
            "client_search_card_rev_idx", "search_card_reversed", condition=models.Q(("search_card_reversed__isnull", False)))),
    ]
