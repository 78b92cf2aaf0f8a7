import pytest
from django.core.management import CommandError, call_command

from clients.models import AdSource, CardType, Client

pytestmark = pytest.mark.django_db

HEADER = "last_name,first_name,middle_name,sex,phone_mobile,phone_home,card_number,card_type,ad_source,birth_day,birth_month,birth_year,call_back_on,blacklisted\n"
GOOD = (
    "Савицкая,Наталья,Геннадьевна,ж,8 (495) 789-45-61,,A-1,Золотая,Сайт,8,8,1964,21.06.2026,да\n"
    "Иванов,Иван,,м,+7 916 123-45-67,74993690439,,,,,,,,нет\n"
)


def run(tmp_path, text, *args, encoding="utf-8", name="clients.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    import io

    out, err = io.StringIO(), io.StringIO()
    call_command("import_clients", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_every_column_and_normalises_phones(tmp_path):
    out, err = run(tmp_path, HEADER + GOOD)
    assert "2 created, 0 updated, 0 unchanged, 0 skipped" in out and err == ""
    savitskaya = Client.objects.get(card_number="A-1")
    assert (savitskaya.full_name, savitskaya.sex, str(savitskaya.phone_mobile)) == ("Савицкая Наталья Геннадьевна", "f", "+74957894561")
    assert (savitskaya.birth_day, savitskaya.birth_month, savitskaya.birth_year) == (8, 8, 1964)
    assert savitskaya.card_type.name == "Золотая" and savitskaya.ad_source.name == "Сайт"
    assert str(savitskaya.call_back_on) == "2026-06-21" and savitskaya.blacklisted
    ivanov = Client.objects.get(last_name="Иванов")
    assert str(ivanov.phone_home) == "+74993690439" and ivanov.phone_work is None and not ivanov.blacklisted
    assert ivanov.search_name == "иванов иван"


def test_reimporting_the_same_file_changes_nothing(tmp_path):
    run(tmp_path, HEADER + GOOD)
    before = list(Client.objects.order_by("pk").values())
    out, _ = run(tmp_path, HEADER + GOOD)
    assert "0 created, 0 updated, 2 unchanged, 0 skipped" in out
    assert list(Client.objects.order_by("pk").values()) == before
    assert CardType.objects.count() == 1 and AdSource.objects.count() == 1


def test_it_updates_by_card_number_then_by_phone(tmp_path):
    run(tmp_path, HEADER + GOOD)
    changed = HEADER + "Савицкая,Наталья,Геннадьевна,ж,84957894562,,A-1,,,,,,,\nИванов,Иван,Иванович,,89161234567,,,,,,,,,\n"
    out, _ = run(tmp_path, changed)
    assert "0 created, 2 updated" in out
    assert str(Client.objects.get(card_number="A-1").phone_mobile) == "+74957894562"
    ivanov = Client.objects.get(last_name="Иванов")
    assert ivanov.middle_name == "Иванович" and ivanov.search_name == "иванов иван иванович"
    assert str(ivanov.phone_home) == "+74993690439", "an empty cell leaves the stored value alone"
    assert Client.objects.count() == 2


def test_every_bad_row_is_reported_with_its_line_and_the_rest_are_imported(tmp_path):
    text = HEADER + GOOD + (
        "Плохой,Телефон,,м,12345,,,,,,,,,\n"
        "Плохая,Дата,,ж,89031112233,,,,,,,,31.02.2026,\n"
        "Плохой,Пол,,x,89031112234,,,,,,,,,\n"
        "Мало,Ячеек\n"
        ",,,,,,,,,40,,,,\n"
        "\"Много\nстрок\",Ок,,м,89031112235,,,,,,,,,\n"
        "Плохой,День,,м,89031112236,,,,,32,,,,\n"
    )
    out, err = run(tmp_path, text)
    assert "3 created, 0 updated, 0 unchanged, 6 skipped" in out
    lines = err.strip().splitlines()
    assert lines[0].startswith("line 4:") and "12345" in lines[0]
    assert lines[1].startswith("line 5:") and "31.02.2026" in lines[1]
    assert lines[2].startswith("line 6:") and "sex" in lines[2]
    assert lines[3].startswith("line 7:") and "2 cells" in lines[3]
    assert lines[4].startswith("line 8:")
    assert lines[5].startswith("line 11:") and "birth_day" in lines[5]
    assert Client.objects.filter(last_name="Много\nстрок").exists()


def test_an_ambiguous_phone_without_a_card_number_is_skipped_not_guessed(tmp_path):
    Client.objects.create(last_name="Орлов", phone_home="84993690439")
    Client.objects.create(last_name="Орлова", phone_home="84993690439")
    out, err = run(tmp_path, "last_name,phone_home\nОрловы,84993690439\n")
    assert "1 skipped" in out and "line 2: its phone matches 2 clients" in err
    assert Client.objects.count() == 2


def test_rows_repeating_a_card_number_in_one_file_make_one_client(tmp_path):
    out, _ = run(tmp_path, "last_name,card_number\nПервый,C-9\nВторой,C-9\n")
    assert "1 created, 1 updated" in out
    assert list(Client.objects.values_list("last_name", flat=True)) == ["Второй"]


def test_it_reads_cp1251_and_semicolons(tmp_path):
    text = (HEADER + GOOD).replace(",", ";")
    out, _ = run(tmp_path, text, "--encoding", "cp1251", "--delimiter", ";", encoding="cp1251")
    assert "2 created" in out
    assert Client.objects.get(card_number="A-1").last_name == "Савицкая"


def test_a_cp1251_file_read_as_utf8_says_so_and_imports_nothing(tmp_path):
    with pytest.raises(CommandError, match=r"line \d+ is not in the file's encoding.*cp1251.*nothing was imported"):
        run(tmp_path, HEADER + GOOD, encoding="cp1251")
    assert not Client.objects.exists()


def test_an_unknown_column_stops_before_anything_is_read(tmp_path):
    with pytest.raises(CommandError, match="unknown column.*surname"):
        run(tmp_path, "surname,phone_mobile\nИванов,89161234567\n")


def test_a_dry_run_counts_but_writes_nothing(tmp_path):
    out, _ = run(tmp_path, HEADER + GOOD, "--dry-run")
    assert out.startswith("dry run, nothing written: 2 created")
    assert not Client.objects.exists() and not CardType.objects.exists()


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_clients", str(tmp_path / "nope.csv"))


def test_a_bom_and_upper_case_header_are_accepted(tmp_path):
    out, _ = run(tmp_path, "\ufeffLAST_NAME,Phone_Mobile\nИванов,89161234567\n")
    assert "1 created" in out


def test_a_new_card_number_attaches_to_the_card_less_client_with_that_phone(tmp_path):
    walk_in = Client.objects.create(last_name="Новикова", phone_mobile="89161234567")
    relative = Client.objects.create(last_name="Новиков", phone_home="84993690439", card_number="F-1")
    out, _ = run(tmp_path, "last_name,phone_mobile,phone_home,card_number\nНовикова,89161234567,,F-2\nНовикова,,84993690439,F-3\n")
    assert "1 created, 1 updated" in out
    walk_in.refresh_from_db()
    assert walk_in.card_number == "F-2"
    assert Client.objects.get(card_number="F-3").pk not in (walk_in.pk, relative.pk)


def test_a_quote_never_closed_is_reported_at_its_line_and_the_rows_after_it_are_imported(tmp_path):
    after = "".join(f"Петров{number},Пётр,,м,+7903111223{number},,,,,,,,,\n" for number in range(8))
    text = HEADER + GOOD + 'Кавычкин,"Иван,,м,89031112299,,,,,,,,,\n' + after
    out, err = run(tmp_path, text)
    assert err.strip().splitlines() == ['line 4: a quote (") opened in this row is never closed; the lines after it are read as rows of their own']
    assert "10 created, 0 updated, 0 unchanged, 1 skipped" in out
    assert Client.objects.filter(last_name__startswith="Петров").count() == 8


def test_rows_after_an_unclosed_quote_keep_their_own_quoted_cells(tmp_path):
    text = HEADER + (
        'Кавычкин,"Иван,,м,89031112299,,,,,,,,,\n'
        "Петров,Пётр,,м,89031112230,,,,,,,,,\n"
        '"Много\nстрок",Ок,,м,89031112235,,,,,,,,,\n'
        "Плохой,День,,м,89031112236,,,,,32,,,,\n"
        "Сидоров,Сидор,,м,89031112237,,,,,,,,,\n"
    )
    out, err = run(tmp_path, text)
    assert [line.split(":")[0] for line in err.strip().splitlines()] == ["line 2", "line 6"]
    assert "3 created, 0 updated, 0 unchanged, 2 skipped" in out
    assert set(Client.objects.values_list("last_name", flat=True)) == {"Петров", "Много\nстрок", "Сидоров"}


def test_a_nul_byte_is_a_reported_line_and_the_other_rows_are_imported(tmp_path):
    out, err = run(tmp_path, HEADER + GOOD + "Ну\x00ль,Иван,,м,89031112233,,,,,,,,,\n" + "Сидоров,Сидор,,м,89031112237,,,,,,,,,\n")
    assert err.startswith("line 4: the row has a NUL byte")
    assert "3 created, 0 updated, 0 unchanged, 1 skipped" in out


@pytest.mark.parametrize("column", ["ad_source", "card_type"])
def test_a_dictionary_name_longer_than_its_column_is_a_reported_line_on_every_run(tmp_path, column):
    text = f"last_name,card_number,{column}\nИванов,A-1,{'Я' * 201}\nПетров,A-2,Сайт\n"
    for _ in range(2):
        out, err = run(tmp_path, text)
        assert err.strip() == f"line 2: {column} is longer than 200 characters"
        assert "1 skipped" in out
    assert list(Client.objects.values_list("last_name", flat=True)) == ["Петров"]


def test_cells_that_look_like_formulas_are_stored_exactly_as_typed(tmp_path):
    text = (
        "last_name,first_name,middle_name,phone_mobile,city,street,comment\n"
        '=1+2,+Иван,-Петрович,+7 916 123-45-67,@Москва,"=HYPERLINK(""http://example.com"")","=cmd|\' /C calc\'!A0"\n'
    )
    out, err = run(tmp_path, text)
    assert "1 created" in out and err == ""
    client = Client.objects.get()
    assert (client.last_name, client.first_name, client.middle_name) == ("=1+2", "+Иван", "-Петрович")
    assert (client.city, client.street, client.comment) == ("@Москва", '=HYPERLINK("http://example.com")', "=cmd|' /C calc'!A0")
    assert str(client.phone_mobile) == "+79161234567"


def test_importing_attaches_earlier_calls_with_one_update_per_batch(tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from history.models import Call
    from tests.helpers import make_call

    orlov = Client.objects.create(last_name="Орлов", phone_home="+74993690439", card_number="O-1")
    calls = {phone: make_call(None, phone=phone).pk for phone in ("+74957894561", "+79161234567", "+74993690439", "+79160000000")}
    rows = (
        "Савицкая,Наталья,,ж,84957894561,,A-1,,,,,,,\n"
        "Иванов,Иван,,м,+7 916 123-45-67,,,,,,,,,\n"
        "Орлова,Ольга,,ж,74993690439,,B-2,,,,,,,\n"  # another card: another client, with Орлов's number
    )
    with CaptureQueriesContext(connection) as queries:
        out, _ = run(tmp_path, HEADER + rows)
    assert "3 created" in out
    owners = {phone: Call.objects.get(pk=pk).client for phone, pk in calls.items()}
    assert owners == {
        "+74957894561": Client.objects.get(last_name="Савицкая"), "+79161234567": Client.objects.get(last_name="Иванов"),
        "+74993690439": None, "+79160000000": None,  # a number two clients have is nobody's
    }
    assert orlov.calls.count() == 0
    assert sum(query["sql"].startswith('UPDATE "history_call"') for query in queries.captured_queries) == 1


def test_importing_a_changed_phone_attaches_the_new_numbers_calls(tmp_path):
    from tests.helpers import make_call

    run(tmp_path, HEADER + GOOD)
    call = make_call(None, phone="+74957894562")
    run(tmp_path, HEADER + "Савицкая,Наталья,Геннадьевна,ж,84957894562,,A-1,,,,,,,\n")
    call.refresh_from_db()
    assert call.client == Client.objects.get(card_number="A-1")


def test_importing_fills_the_search_keys(tmp_path):
    run(tmp_path, HEADER + "Фёдоров,Артём,,м,+7 916 123-45-67,,Gold-12,,,,,,,\n")
    client = Client.objects.get()
    assert (client.search_name, client.search_first_name, client.phone_mobile_reversed) == ("федоров артем", "артем", "76543216197")
    assert (client.search_card, client.search_card_reversed) == ("gold-12", "21-dlog")
    run(tmp_path, HEADER + "Фёдоров,Семён,,м,+7 916 123-45-68,,Gold-12,,,,,,,\n")
    client.refresh_from_db()
    assert (client.search_first_name, client.phone_mobile_reversed) == ("семен", "86543216197")


def test_a_row_with_a_card_and_the_phone_of_a_row_just_read_updates_that_client(tmp_path):
    out, err = run(tmp_path, HEADER + "Орлов,Олег,,м,89161234567,,,,,,,,,\nОрлов,Олег,,м,89161234567,,B-2,,,,,,,\n")
    assert "1 created, 1 updated" in out and err == ""
    assert Client.objects.get().card_number == "B-2"


@pytest.mark.parametrize("keys_repay", [0, 10**9], ids=["keys looked up in the database", "keys read at once"])
def test_batches_match_rows_of_earlier_batches_as_one_batch_would(tmp_path, monkeypatch, keys_repay):
    from clients import importer

    monkeypatch.setattr(importer.Upserter, "KEYS_REPAY", keys_repay)
    Client.objects.create(last_name="Старый", phone_work="84993690439")
    Client.objects.create(last_name="Картов", card_number="K-1", phone_mobile="89031112200")
    text = HEADER + (
        "Первый,Иван,,м,89161234567,,C-9,,,,,,,\n"
        "Второй,Пётр,,м,89161234568,,,,,,,,,\n"
        "Первый,Иван,Иванович,м,,,C-9,,,,,,,\n"  # the card of a row of the batch before
        "Второй,Пётр,Петрович,м,89161234568,,,,,,,,,\n"  # the phone of a row of the batch before
        "Старый,Семён,,м,,84993690439,,,,,,,,\n"  # a client of the base, by a phone in another column
        "Картов,Карл,,м,89031112200,,K-2,,,,,,,\n"  # another card: the phone's client has one, so a new client
        "Картов,Кирилл,,м,,,K-1,,,,,,,\n"  # by card, whatever the phone
    )
    outcomes = []
    for batch in (1000, 2):
        Client.objects.exclude(last_name__in=["Старый", "Картов"]).delete()
        Client.objects.filter(card_number="K-2").delete()
        Client.objects.filter(last_name="Старый").update(first_name="")
        Client.objects.filter(card_number="K-1").update(first_name="")
        monkeypatch.setattr(importer, "BATCH", batch)
        out, err = run(tmp_path, text)
        outcomes.append((out, err, sorted(Client.objects.values_list("last_name", "first_name", "middle_name", "card_number", "phone_mobile", "phone_home", "phone_work"))))
    assert outcomes[0] == outcomes[1]
    assert "3 created, 4 updated, 0 unchanged, 0 skipped" in outcomes[0][0], outcomes[0]


def test_digits_of_other_scripts_are_reported_not_fatal(tmp_path):
    out, err = run(tmp_path, "last_name,phone_mobile,birth_day\nИванов,8²²²²²²²²²²,\nПетров,,²\nСидоров,+7 916 123-45-67,\n")
    assert err.splitlines()[0].startswith("line 2: “8²²²²²²²²²²” is not a valid phone number")
    assert err.splitlines()[1].startswith("line 3: birth_day must be a number")
    assert "1 created" in out


def test_an_update_writes_every_kind_of_column(tmp_path):
    run(tmp_path, HEADER + GOOD)
    changed = HEADER + "Савицкая,Наталия,Геннадьевна,ж,8 (495) 789-45-62,,A-1,Серебряная,Газета,9,9,1965,01.07.2026,нет\n"
    out, err = run(tmp_path, changed)
    assert "0 created, 1 updated, 0 unchanged" in out and err == ""
    client = Client.objects.select_related("card_type", "ad_source").get(card_number="A-1")
    assert (client.first_name, client.phone_mobile, client.card_type.name, client.ad_source.name) == ("Наталия", "+74957894562", "Серебряная", "Газета")
    assert (client.birth_day, client.birth_month, client.birth_year, str(client.call_back_on), client.blacklisted) == (9, 9, 1965, "2026-07-01", False)
    assert (client.search_first_name, client.phone_mobile_reversed) == ("наталия", "26549875947")
    assert Client.objects.get(last_name="Иванов").first_name == "Иван", "a client the file does not change is left alone"


@pytest.mark.parametrize("batch", [1000, 1])
def test_a_number_that_moved_to_another_client_in_the_file_is_matched_to_its_new_owner(tmp_path, monkeypatch, batch):
    from clients import importer
    from history.models import Call
    from tests.helpers import make_call

    monkeypatch.setattr(importer, "BATCH", batch)
    first = Client.objects.create(last_name="Первый", card_number="A-1", phone_mobile="+79161234567")
    second = Client.objects.create(last_name="Второй", card_number="B-1", phone_mobile="+79031112233")
    call = make_call(None, phone="+79161234567")
    text = "last_name,first_name,phone_mobile,card_number\n" + (
        "Первый,,89160000001,A-1\n"  # A-1 gives up +79161234567…
        "Второй,,89161234567,B-1\n"  # …which B-1 takes
        ",Борис,+7 916 123-45-67,\n"  # no card: the one client who has the number now
    )
    out, err = run(tmp_path, text)
    assert err == "" and "0 created, 3 updated" in out, (out, err)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.phone_mobile, second.phone_mobile, second.first_name) == ("+79160000001", "+79161234567", "Борис")
    assert Call.objects.get(pk=call.pk).client == second


@pytest.mark.parametrize("batch", [1000, 1])
def test_rows_of_one_client_repeated_in_a_file_follow_each_other(tmp_path, monkeypatch, batch):
    from clients import importer

    monkeypatch.setattr(importer, "BATCH", batch)
    text = "last_name,middle_name,phone_mobile,city,card_number\n" + (
        "Новиков,,89161234567,,C-1\n"
        "Новиков,Петрович,89161234567,,C-1\n"  # the same card: the same client, one more cell
        "Новиков,Петрович,89161234567,,C-1\n"  # nothing new
        ",,89161234567,Казань,\n"  # its phone, no card
        "Новиков,,89031112233,,C-1\n"  # the card's phone changes…
        "Другой,,89161234567,,\n"  # …so the old number is nobody's now: a new client
    )
    out, err = run(tmp_path, text)
    assert err == "" and "2 created, 3 updated, 1 unchanged, 0 skipped" in out, (out, err)
    novikov = Client.objects.get(card_number="C-1")
    assert (novikov.middle_name, novikov.city, novikov.phone_mobile) == ("Петрович", "Казань", "+79031112233")
    assert novikov.search_name == "новиков петрович" and novikov.phone_mobile_reversed == "33221113097"
    assert Client.objects.get(last_name="Другой").phone_mobile == "+79161234567"


def test_a_file_mixing_new_unchanged_and_changed_cards_is_counted_row_by_row(tmp_path):
    Client.objects.create(last_name="Старый", first_name="Иван", card_number="K-1")
    Client.objects.create(last_name="Прежний", first_name="Пётр", card_number="K-2", phone_home="+74993690439")
    text = "last_name,first_name,phone_home,card_number\n" + (
        "Старый,Семён,,K-1\n"
        "Новый,Олег,,K-3\n"
        "Прежний,Пётр,8 (499) 369-04-39,K-2\n"
        "Новая,Анна,,k-1\n"  # another case: another card
    )
    out, err = run(tmp_path, text)
    assert err == "" and "2 created, 1 updated, 1 unchanged, 0 skipped" in out, (out, err)
    assert sorted(Client.objects.values_list("card_number", "first_name")) == [("K-1", "Семён"), ("K-2", "Пётр"), ("K-3", "Олег"), ("k-1", "Анна")]


def test_a_value_repeated_on_many_lines_is_read_and_reported_on_each(tmp_path):
    text = "last_name,phone_mobile,birth_day,card_number\n" + (
        "Первый,12345,1,R-1\n"
        "Второй,89161234567,40,R-2\n"
        "Третий,12345,1,R-3\n"
        "Четвёртый,89161234567,1,R-4\n"
        "Пятый,8 916 123-45-67,40,R-5\n"
    )
    out, err = run(tmp_path, text)
    assert [line.split(":")[0] for line in err.splitlines()] == ["line 2", "line 3", "line 4", "line 6"]
    assert "“12345” is not a valid phone number" in err.splitlines()[2] and "birth_day" in err.splitlines()[3]
    assert "1 created, 0 updated, 0 unchanged, 4 skipped" in out
    assert Client.objects.get().phone_mobile == "+79161234567"


def test_a_wrong_encoding_after_batches_were_written_rolls_all_of_them_back(tmp_path, monkeypatch):
    from clients import importer

    monkeypatch.setattr(importer, "BATCH", 2)
    written = watch_writes(monkeypatch)
    # More than the decoder's first block of good lines, so that batches are written before the bad byte is read.
    good = "".join(f"Петров{number},89031{number:06d}\n" for number in range(1000))
    path = tmp_path / "mixed.csv"
    path.write_bytes(("last_name,phone_mobile\n" + good).encode() + "Ёлкин,89031112999\n".encode("cp1251"))
    with pytest.raises(CommandError, match=r"line \d+ is not in the file's encoding.*nothing was imported"):
        call_command("import_clients", str(path))
    assert sum(written) > 100
    assert not Client.objects.exists()


def watch_writes(monkeypatch, fail_at: int | None = None) -> list[int]:
    """The number of new clients each write sends, whether into the COPY the import keeps open (ClientStream) or as a
    batch (insert_clients); the write number `fail_at` raises instead, as when the database goes away."""
    from clients import bulk, importer

    written = []

    def watched(write, count):
        def watching(*args):
            written.append(count(*args))
            if len(written) == fail_at:
                raise RuntimeError("the database went away")
            return write(*args)
        return watching

    monkeypatch.setattr(importer, "insert_clients", watched(importer.insert_clients, lambda rows, *lines: len(rows)))
    monkeypatch.setattr(bulk.ClientStream, "write", watched(bulk.ClientStream.write, lambda stream, lines: len(lines)))
    return written


def test_a_failure_while_writing_stops_the_reading_thread_and_writes_nothing(tmp_path, monkeypatch):
    import threading

    from clients import importer

    monkeypatch.setattr(importer, "BATCH", 2)
    written = watch_writes(monkeypatch, fail_at=2)
    threads = threading.active_count()
    text = "last_name,phone_mobile\n" + "".join(f"Петров{number},89031112{number:03d}\n" for number in range(40))
    with pytest.raises(RuntimeError, match="went away"):
        run(tmp_path, text)
    assert threading.active_count() == threads and written == [2, 2]
    assert not Client.objects.exists()


def test_the_import_leaves_the_planner_as_it_found_it(tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner settings")
    run(tmp_path, HEADER + GOOD)
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone()[0] == "on"


def test_backslashes_tabs_and_line_breaks_in_cells_are_stored_exactly(tmp_path):
    comment = "C:\\new\\table\ttab\r\nsecond line \\N"
    text = 'last_name,card_number,comment\n"Обратный\\Слэш",T-1,"' + comment + '"\n'
    out, err = run(tmp_path, text)
    assert "1 created" in out and err == ""
    client = Client.objects.get()
    assert (client.last_name, client.comment) == ("Обратный\\Слэш", comment)


@pytest.mark.parametrize("keys_repay", [0, 10**9], ids=["keys looked up in the database", "keys read at once"])
def test_in_a_long_file_of_new_clients_a_row_with_a_known_phone_or_card_still_finds_its_client(tmp_path, monkeypatch, keys_repay):
    from clients import importer

    monkeypatch.setattr(importer, "BATCH", 10)
    monkeypatch.setattr(importer.Upserter, "KEYS_REPAY", keys_repay)
    walk_in = Client.objects.create(last_name="Старая", phone_home="84993690439")
    carded = Client.objects.create(last_name="Картова", card_number="Z-7")
    rows = [f"Новая{number},8903111{number:04d},N-{number}" for number in range(45)]
    rows[13] = "Старая,84993690439,N-13"  # a card nobody has and the phone of a client without one: that client
    rows[31] = "Картова,89031110031,z-7"  # a card that folds to a known one is not that card: a new client
    rows[40] = "Новая3,89031119999,N-3"  # the card of a row some chunks before: that row's client
    out, err = run(tmp_path, "last_name,phone_mobile,card_number\n" + "\n".join(rows) + "\n")
    assert err == "" and "43 created, 2 updated, 0 unchanged, 0 skipped" in out, (out, err)
    walk_in.refresh_from_db()
    assert (walk_in.card_number, walk_in.phone_mobile, walk_in.phone_home) == ("N-13", "+74993690439", "+74993690439")
    assert Client.objects.get(card_number="N-3").phone_mobile == "+79031119999"
    assert Client.objects.get(card_number="z-7").pk != carded.pk
    assert Client.objects.count() == 2 + 43


@pytest.mark.django_db(transaction=True)
def test_a_session_dropped_while_new_clients_stream_in_fails_the_import_and_keeps_nothing(tmp_path, monkeypatch):
    import psycopg
    from django.db import OperationalError, connection

    from clients import bulk, importer
    from tests.conftest import needs

    needs(connection.vendor == "postgresql", f"COPY, PostgreSQL's; the database is {connection.vendor}")
    monkeypatch.setattr(importer, "BATCH", 50)
    params = connection.get_connection_params()
    real_write = bulk.ClientStream.write
    writes = []

    def write_then_drop_the_session(stream, lines):
        writes.append(len(lines))
        real_write(stream, lines)
        if len(writes) == 3:  # the COPY is open and has rows: the server ends the session under it
            with psycopg.connect(**{key: params[key] for key in ("dbname", "user", "password", "host", "port") if key in params},
                                 autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")

    monkeypatch.setattr(bulk.ClientStream, "write", write_then_drop_the_session)
    text = "last_name,phone_mobile\n" + "".join(f"Петров{number},89031{number:06d}\n" for number in range(1000))
    with pytest.raises(OperationalError):
        run(tmp_path, text)
    connection.close()  # as the command's process would end, and the next one connect afresh
    assert len(writes) >= 3 and not Client.objects.exists()
    out, err = run(tmp_path, text)
    assert "1000 created" in out and Client.objects.count() == 1000


@pytest.mark.parametrize("keys_repay", [0, 10**9], ids=["keys looked up in the database", "keys read at once"])
def test_rows_told_new_by_their_keys_end_as_matching_every_row_in_order_would(tmp_path, monkeypatch, keys_repay):
    import random

    from clients import importer

    monkeypatch.setattr(importer, "BATCH", 25)
    monkeypatch.setattr(importer.Upserter, "KEYS_REPAY", keys_repay)
    rng = random.Random(5)
    cards = [f"Q-{number}" for number in range(12)] + [f"q-{number}" for number in range(3)]  # some fold alike
    phones = [f"8916{number:07d}" for number in range(15)]
    rows = []
    for number in range(300):
        common = rng.random() < 0.25  # most rows are new clients; some share a card or a phone with others
        card = rng.choice(cards) if common and rng.random() < 0.5 else rng.choice(["", f"U-{number}"])
        phone = rng.choice(phones) if common else f"8903{number:07d}"
        if number % 37 == 5:
            phone = "12345"  # a bad row now and then, told in its place among the ambiguous ones
        rows.append(f"Клиент{number},{rng.choice(['', 'Анна', 'Иван'])},{phone},{rng.choice(['', phone]) if common else ''},{card}")
    text = "last_name,first_name,phone_mobile,phone_work,card_number\n" + "\n".join(rows) + "\n"

    def outcome() -> tuple:
        Client.objects.all().delete()
        Client.objects.create(last_name="Давний", phone_mobile="89160000007")
        Client.objects.create(last_name="Картовый", card_number="Q-3", phone_mobile="89160000011")
        out, err = run(tmp_path, text)
        return out, err, sorted(Client.objects.values_list("last_name", "first_name", "phone_mobile", "phone_work", "card_number"))

    streamed = outcome()
    monkeypatch.setattr(importer.Upserter, "new_rows", lambda upserter, keys, cards, phones: [False] * len(cards))  # every row matched
    assert streamed == outcome()
    assert " 0 updated" not in streamed[0] and " 0 skipped" not in streamed[0], "rows update, and some are ambiguous"
    told = [int(line.split(":")[0].removeprefix("line ")) for line in streamed[1].splitlines()]
    assert told == sorted(told) and len(told) > 10, "bad and ambiguous rows are told in the order of their lines"
