"""The catalog: /api/v1/songs and /api/v1/charts. Every player reads; session:* accounts write."""

import pytest

from sessions_app.models import Chart, Song

from .factories import ChartFactory, PlayerFactory, SongFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return PlayerFactory(username="root", is_superuser=True, is_staff=True)


# --- songs: reading -------------------------------------------------------------------------


def test_every_player_lists_songs_by_title_as_an_array(api, outsider):
    SongFactory(title="Zeta", artist="A")
    SongFactory(title="Alpha", artist="B", bpm=150, length_seconds=120, subtitle="(Long ver.)", genre="Trance")

    response = api.as_(outsider).get("/api/v1/songs")

    assert response.status_code == 200
    body = response.json()
    assert [s["title"] for s in body] == ["Alpha", "Zeta"]
    assert set(body[0]) == {"id", "title", "artist", "subtitle", "genre", "bpm", "lengthSeconds", "data", "dateCreated"}
    assert body[0]["bpm"] == 150  # a JSON number, an int when integral
    assert body[0]["lengthSeconds"] == 120
    assert body[0]["subtitle"] == "(Long ver.)"
    assert body[1]["bpm"] is None
    assert body[0]["dateCreated"].endswith("Z")


def test_songs_search_matches_part_of_the_title_or_the_artist_in_any_case(api, member):
    SongFactory(title="Paranoia", artist="180")
    SongFactory(title="Butterfly", artist="Smile.dk")
    SongFactory(title="Smile Again", artist="Someone")

    by_title = api.as_(member).get("/api/v1/songs", {"search": "PARA"}).json()
    by_both = api.get("/api/v1/songs", {"search": "smile"}).json()

    assert [s["title"] for s in by_title] == ["Paranoia"]
    assert [s["title"] for s in by_both] == ["Butterfly", "Smile Again"]


def test_songs_page_with_limit_and_skip(api, member):
    for title in "ABCDE":
        SongFactory(title=title)

    page = api.as_(member).get("/api/v1/songs", {"limit": 2, "skip": 1}).json()
    bad = api.get("/api/v1/songs", {"limit": 0})

    assert [s["title"] for s in page] == ["B", "C"]
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "limit"


def test_song_list_costs_one_query_however_many_songs(api, member, django_assert_num_queries):
    SongFactory.create_batch(40)
    client = api.as_(member)
    with django_assert_num_queries(1):  # the page of songs (reads need no permission lookup)
        response = client.get("/api/v1/songs", {"search": "Song"})
    assert len(response.json()) == 40


def test_a_song_is_read_by_id_and_an_unknown_one_is_404(api, member):
    song = SongFactory(title="Max 300", artist="Omega", data={"folder": "MAX"})

    found = api.as_(member).get(f"/api/v1/songs/{song.pk}")
    missing = api.get(f"/api/v1/songs/{song.pk + 1}")
    huge = api.get("/api/v1/songs/99999999999999999999999")

    assert found.status_code == 200
    assert found.json()["id"] == song.pk
    assert found.json()["data"] == {"folder": "MAX"}
    assert missing.status_code == 404
    assert missing.json()["code"] == "song_not_found"
    assert huge.status_code == 404


def test_the_catalog_needs_authentication(api):
    assert api.get("/api/v1/songs").status_code == 401
    assert api.get("/api/v1/charts").status_code == 401
    assert api.post("/api/v1/songs", {"title": "T", "artist": "A"}, format="json").status_code == 401


# --- songs: writing -------------------------------------------------------------------------


def test_a_session_star_account_creates_a_song(api, game_server):
    response = api.as_(game_server).post(
        "/api/v1/songs",
        {"title": "Max 300", "artist": "Omega", "bpm": 300.5, "lengthSeconds": 95, "data": {"folder": "MAX"}},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    song = Song.objects.get(pk=body["id"])
    assert (song.title, song.artist, song.length_seconds, song.data) == ("Max 300", "Omega", 95, {"folder": "MAX"})
    assert str(song.bpm) == "300.50"
    assert body["bpm"] == 300.5
    assert body["subtitle"] == ""


def test_a_superuser_creates_a_song(api, superuser):
    response = api.as_(superuser).post("/api/v1/songs", {"title": "T", "artist": "A"}, format="json")
    assert response.status_code == 201


def test_a_player_may_not_create_a_song_403_before_the_body_is_checked(api, member):
    valid = api.as_(member).post("/api/v1/songs", {"title": "T", "artist": "A"}, format="json")
    invalid = api.post("/api/v1/songs", {"title": ""}, format="json")

    assert valid.status_code == 403
    assert valid.json()["code"] == "catalog_forbidden"
    assert invalid.status_code == 403
    assert not Song.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"artist": "A"}, "title"),
        ({"title": "T"}, "artist"),
        ({"title": "", "artist": "A"}, "title"),
        ({"title": "T" * 201, "artist": "A"}, "title"),
        ({"title": "T", "artist": "A", "bpm": "120"}, "bpm"),  # a number, not a string
        ({"title": "T", "artist": "A", "bpm": -1}, "bpm"),
        ({"title": "T", "artist": "A", "bpm": 1.234}, "bpm"),  # two decimal places at most
        ({"title": "T", "artist": "A", "lengthSeconds": 1.5}, "lengthSeconds"),
        ({"title": "T", "artist": "A", "data": [1]}, "data"),
    ],
)
def test_bad_songs_are_400_with_the_field_named(api, game_server, body, field):
    response = api.as_(game_server).post("/api/v1/songs", body, format="json")

    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["errors"]]
    assert not Song.objects.exists()


def test_put_replaces_a_song_and_needs_title_and_artist(api, game_server):
    song = SongFactory(title="Old", artist="Someone", genre="Pop")
    client = api.as_(game_server)

    incomplete = client.put(f"/api/v1/songs/{song.pk}", {"title": "New"}, format="json")
    replaced = client.put(f"/api/v1/songs/{song.pk}", {"title": "New", "artist": "Other", "bpm": 128}, format="json")

    assert incomplete.status_code == 400
    assert [e["field"] for e in incomplete.json()["errors"]] == ["artist"]
    assert replaced.status_code == 200
    assert replaced.json()["title"] == "New"
    assert replaced.json()["bpm"] == 128
    song.refresh_from_db()
    assert (song.title, song.artist, song.genre) == ("New", "Other", "Pop")


def test_patch_changes_only_the_members_sent(api, game_server):
    song = SongFactory(title="Old", artist="Someone")

    response = api.as_(game_server).patch(f"/api/v1/songs/{song.pk}", {"genre": "Eurobeat"}, format="json")

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["genre"]) == ("Old", "Eurobeat")
    song.refresh_from_db()
    assert song.genre == "Eurobeat"


def test_a_player_may_not_change_a_song_but_gets_404_for_a_missing_one(api, member):
    song = SongFactory(title="Old")
    client = api.as_(member)

    forbidden = client.patch(f"/api/v1/songs/{song.pk}", {"title": "New"}, format="json")
    missing = client.patch(f"/api/v1/songs/{song.pk + 1}", {"title": "New"}, format="json")

    assert forbidden.status_code == 403
    assert missing.status_code == 404  # 404 before 403
    song.refresh_from_db()
    assert song.title == "Old"


# --- charts ---------------------------------------------------------------------------------


def test_charts_filter_by_song_and_by_difficulty_in_any_case(api, member):
    song, other = SongFactory(), SongFactory()
    hard = ChartFactory(song=song, difficulty="HARD", level=12.5)
    ChartFactory(song=song, difficulty="EASY", level=3)
    other_hard = ChartFactory(song=other, difficulty="HARD", level=10)
    client = api.as_(member)

    of_song = client.get("/api/v1/charts", {"song": song.pk}).json()
    hard_ones = client.get("/api/v1/charts", {"difficulty": "hard"}).json()
    both = client.get("/api/v1/charts", {"song": song.pk, "difficulty": "HARD"}).json()

    assert [c["difficulty"] for c in of_song] == ["EASY", "HARD"]
    assert [c["id"] for c in hard_ones] == [hard.pk, other_hard.pk]
    assert both == [
        {
            "id": hard.pk,
            "song": song.pk,
            "difficulty": "HARD",
            "level": 12.5,
            "data": {},
            "dateCreated": both[0]["dateCreated"],
        }
    ]
    assert [c["level"] for c in hard_ones] == [12.5, 10]


@pytest.mark.parametrize("song", ["abc", "1.5", "0"])
def test_a_malformed_song_filter_is_400(api, member, song):
    response = api.as_(member).get("/api/v1/charts", {"song": song})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "song"


def test_chart_list_costs_one_query_however_many_charts(api, member, django_assert_num_queries):
    ChartFactory.create_batch(30)
    client = api.as_(member)
    with django_assert_num_queries(1):  # the page of charts
        response = client.get("/api/v1/charts", {"difficulty": "HARD"})
    assert len(response.json()) == 30


def test_a_session_star_account_creates_and_updates_a_chart(api, game_server):
    song, other = SongFactory(), SongFactory()
    client = api.as_(game_server)

    created = client.post("/api/v1/charts", {"song": song.pk, "difficulty": "EXPERT", "level": 14}, format="json")
    chart_id = created.json()["id"]
    patched = client.patch(f"/api/v1/charts/{chart_id}", {"level": 14.5}, format="json")
    put = client.put(f"/api/v1/charts/{chart_id}", {"song": other.pk, "difficulty": "MASTER"}, format="json")
    read = client.get(f"/api/v1/charts/{chart_id}")

    assert created.status_code == 201, created.json()
    assert created.json()["level"] == 14
    assert patched.status_code == 200
    assert patched.json()["level"] == 14.5
    assert put.status_code == 200
    assert read.json()["song"] == other.pk
    assert read.json()["difficulty"] == "MASTER"
    assert read.json()["level"] == 14.5  # PUT keeps the members it leaves out
    chart = Chart.objects.get(pk=chart_id)
    assert (chart.song_id, chart.difficulty, str(chart.level)) == (other.pk, "MASTER", "14.50")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"difficulty": "HARD"}, "song", "required"),
        ({"song": 999999, "difficulty": "HARD"}, "song", "does_not_exist"),
        ({"song": "1", "difficulty": "HARD"}, "song", "incorrect_type"),  # an id is a number
        ({"song": True, "difficulty": "HARD"}, "song", "incorrect_type"),
        ({"song": "SONG"}, "difficulty", "required"),
        ({"song": "SONG", "difficulty": "x" * 65}, "difficulty", "max_length"),
        ({"song": "SONG", "difficulty": "HARD", "level": "12"}, "level", "invalid"),
        ({"song": "SONG", "difficulty": "HARD", "level": 12345}, "level", "invalid"),
    ],
)
def test_bad_charts_are_400_with_the_field_named(api, game_server, body, field, code):
    song = SongFactory(pk=1)
    body = {k: (song.pk if v == "SONG" else v) for k, v in body.items()}  # "SONG": an existing song

    response = api.as_(game_server).post("/api/v1/charts", body, format="json")

    assert response.status_code == 400
    assert {"field": field, "code": code} in [
        {"field": e["field"], "code": e["code"]} for e in response.json()["errors"]
    ]
    assert not Chart.objects.exists()


def test_a_player_reads_charts_but_may_not_write_them(api, member):
    chart = ChartFactory()
    client = api.as_(member)

    read = client.get(f"/api/v1/charts/{chart.pk}")
    created = client.post("/api/v1/charts", {"song": chart.song_id, "difficulty": "X"}, format="json")
    changed = client.put(f"/api/v1/charts/{chart.pk}", {"song": chart.song_id, "difficulty": "X"}, format="json")
    missing = client.get(f"/api/v1/charts/{chart.pk + 1}")

    assert read.status_code == 200
    assert read.json()["song"] == chart.song_id
    assert (created.status_code, changed.status_code) == (403, 403)
    assert missing.status_code == 404
    assert missing.json()["code"] == "chart_not_found"
    assert Chart.objects.count() == 1


def test_the_schema_documents_the_catalog_routes(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values() if "operationId" in op}
    assert {
        "songs_list",
        "songs_create",
        "songs_retrieve",
        "songs_update",
        "songs_partial_update",
        "charts_list",
        "charts_create",
        "charts_retrieve",
        "charts_update",
        "charts_partial_update",
    } <= operations
