"""Fill a PostgreSQL database of the bench's own with BENCH_SESSIONS realistically shaped sessions.

Set-based SQL (INSERT ... SELECT over generate_series), never the ORM row by row: a million
sessions load in minutes. Every row is a function of its id, so the rendered documents stored
on the session row (`users_doc`, `teams_doc`, `invites_doc`) are computed from the same
formulas as the Team, Membership and Invite rows they render; `check_documents` then compares
a sample with what `services.documents.render_documents` renders from the tables.

The shape, for session i (1..N) over P = max(200, N/5) players:
- members: 1 + i % 5 players, the j-th being player 1 + (i*7919 + j*104729) % P (distinct for
  j < 8 as 104729 is a prime above any P used); the first hosts, except in every 20th session
  (a system session, no host); joined one second apart from dateCreated;
- status: 60 % open, 25 % in progress, 15 % closed; every 7th private; every 25th with a join
  password; numTeams 0, 2, 2, 4 (teamSize 4) with members dealt round-robin into teams;
- every 3rd has a pending invite (player j=5, from the host, half without expiry), every 9th
  also a declined one (j=6); every 10th a reservation (j=7) for a day;
- `data` of a few shapes (map, mode, round, region, sometimes nested settings);
- dateCreated spread over four weeks, dateModified between it and now; version 1..7;
- every player a stamp of its sessions view, and in the group `bench-players`
  (session:read-player:self, customise_session); BENCH_TARGETS extra players
  `bench-joiner-K` in no session, and `bench-server` with session:*.
"""

from __future__ import annotations

import re
import time

import psycopg

from bench import config

# The table each load step fills.
STEP_TABLES = {
    "players": "player",
    "sessions": "session",
    "teams": "team",
    "memberships": "member",
    "invites": "invite",
    "reservations": "reservation",
    "reserved places on the session rows": "session",
    "view stamps": "stamp",
}


def recreate_database() -> None:
    with psycopg.connect(f"{config.PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{config.DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{config.DATABASE}"')


def load(log=print) -> None:
    """Recreate the database, migrate and load; Django must be set up on config.DATABASE_URL."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, Permission
    from django.core.management import call_command
    from django.db import connection, transaction

    from players_app.models import Player
    from sessions_app.codes import JOIN_CODE_ALPHABET
    from sessions_app.models import (
        SCOPE_ANY,
        SCOPE_READ_PLAYER_SELF,
        GameSession,
        Invite,
        Membership,
        PlayerSessionsStamp,
        Reservation,
        Team,
    )
    from sessions_app.services.join_passwords import hash_join_password

    started = time.monotonic()
    connection.close()
    recreate_database()
    call_command("migrate", verbosity=0, interactive=False)
    log(f"bench: migrated {config.DATABASE} in {time.monotonic() - started:.1f}s")

    n, p = config.SESSIONS, config.PLAYERS
    t = {
        "player": Player._meta.db_table,
        "groups": Player.groups.through._meta.db_table,
        "session": GameSession._meta.db_table,
        "team": Team._meta.db_table,
        "member": Membership._meta.db_table,
        "invite": Invite._meta.db_table,
        "reservation": Reservation._meta.db_table,
        "stamp": PlayerSessionsStamp._meta.db_table,
    }
    params = {
        "n": n,
        "p": p,
        "pw": make_password("bench-password"),
        "join_pw": hash_join_password("bench-join-password"),
        "code_alphabet": JOIN_CODE_ALPHABET,
    }

    # The j-th player of session i (see the module docstring); SQL text with i and j spliced in.
    def nth(i: str, j: str) -> str:
        return f"(1 + (({i})::bigint * 7919 + ({j}) * 104729) % {p})"

    # ISO 8601 as sessions_project.times.iso writes it (expiries are whole seconds).
    def iso(ts: str) -> str:
        return f"""to_char(({ts}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""

    members = "(1 + s.id % 5)"
    teams = "(CASE s.id % 4 WHEN 0 THEN 0 WHEN 3 THEN 4 ELSE 2 END)"
    steps = [
        (
            "players",
            f"""
            INSERT INTO {t["player"]} (id, password, is_superuser, username, first_name, last_name, email,
                                       is_staff, is_active, date_joined, uid)
            SELECT g, %(pw)s, false, 'player' || g, '', '', '', false, true,
                   now() - interval '60 days' + g * interval '1 second', gen_random_uuid()
            FROM generate_series(1, %(p)s) g
            """,
        ),
        (
            "sessions",
            f"""
            INSERT INTO {t["session"]} (id, uid, date_created, date_modified, version, data, host_id, creator_id,
                server_uid, status, visibility, num_teams, team_size, password_hash, type, name, "desc",
                highlight, workspace_id, is_imported, idle_timeout, last_activity_at, idle_deadline, closes_at,
                closed_at, users_doc, teams_doc, invites_doc, reservations_doc, join_code)
            SELECT s.id, gen_random_uuid(), s.created, s.modified, 1 + s.id % 7,
                jsonb_build_object(
                    'map', (ARRAY['dust', 'inferno', 'nuke', 'mirage', 'train'])[1 + s.id % 5],
                    'mode', (ARRAY['ffa', 'tdm', 'ctf'])[1 + s.id % 3],
                    'round', s.id % 13,
                    'region', (ARRAY['eu-west', 'us-east', 'ap-south', 'sa-east'])[1 + s.id / 3 % 4])
                || CASE WHEN s.id % 4 = 0 THEN jsonb_build_object('settings', jsonb_build_object(
                    'friendlyFire', s.id % 8 = 0, 'maxScore', 10 + s.id % 90,
                    'mutators', jsonb_build_array('lowgrav', 'fastswap', 'vampire'))) ELSE '{{}}'::jsonb END
                -- One session in a thousand: what a selective search by data finds (bench/run.py).
                || CASE WHEN s.id % 1000 = 7 THEN '{{"tournament": "winter-cup"}}'::jsonb ELSE '{{}}'::jsonb END,
                s.host, s.host,
                CASE WHEN s.id % 5 = 0 THEN gen_random_uuid() END,
                s.status, CASE WHEN s.id % 7 = 0 THEN 'private' ELSE 'public' END,
                {teams}, CASE WHEN {teams} > 0 THEN 4 ELSE 0 END,
                CASE WHEN s.id % 25 = 1 THEN %(join_pw)s ELSE '' END,
                (ARRAY['default', 'ranked', 'casual', 'coop'])[1 + s.id / 4 % 4],
                'Session ' || s.id, CASE WHEN s.id % 6 = 0 THEN 'A friendly match, all welcome' ELSE '' END,
                s.id % 50 = 0, '', false, 0, s.modified, NULL, NULL,
                CASE WHEN s.status = 'closed' THEN s.modified END,
                (SELECT jsonb_agg(pl.uid::text ORDER BY j) FROM generate_series(0, {members} - 1) j
                    JOIN {t["player"]} pl ON pl.id = {nth("s.id", "j")}),
                (SELECT coalesce(jsonb_agg(jsonb_build_object('index', k, 'name', 'Team ' || (k + 1),
                        'players', (SELECT coalesce(jsonb_agg(pl.uid::text ORDER BY j), '[]'::jsonb)
                            FROM generate_series(0, {members} - 1) j JOIN {t["player"]} pl ON pl.id = {nth("s.id", "j")}
                            WHERE j % NULLIF({teams}, 0) = k)) ORDER BY k), '[]'::jsonb)
                    FROM generate_series(0, {teams} - 1) k),
                CASE WHEN s.id % 3 = 0 THEN (SELECT jsonb_build_array(jsonb_build_object('uid', pl.uid::text,
                        'expiresAt', CASE WHEN s.id % 2 = 0 THEN {iso("s.invite_expiry")} END))
                    FROM {t["player"]} pl WHERE pl.id = {nth("s.id", "5")}) ELSE '[]'::jsonb END,
                '[]'::jsonb,
                -- A distinct join code per session: its id written in the codes' 31 characters.
                (SELECT string_agg(substr(%(code_alphabet)s, 1 + ((s.id / power(31, k)::bigint) % 31)::int, 1), ''
                    ORDER BY k) FROM generate_series(0, 5) k)
            FROM (
                SELECT g AS id, c.created, c.created + (now() - c.created) * ((g::bigint * 40503) % 65537) / 65537.0
                        AS modified,
                    CASE WHEN g % 20 = 3 THEN NULL ELSE {nth("g", "0")} END AS host,
                    CASE WHEN g % 20 < 12 THEN 'open' WHEN g % 20 < 17 THEN 'in_progress' ELSE 'closed' END
                        AS status,
                    date_trunc('second', now()) + interval '7 days' AS invite_expiry
                FROM generate_series(1, %(n)s) g,
                    LATERAL (SELECT now() - interval '28 days' * ((g::bigint * 2654435761) % 1000003) / 1000003.0
                        AS created) c
            ) s
            """,
        ),
        (
            "teams",
            f"""
            INSERT INTO {t["team"]} (session_id, index, name)
            SELECT s.id, k, 'Team ' || (k + 1) FROM {t["session"]} s, generate_series(0, s.num_teams - 1) k
            WHERE s.num_teams > 0 ORDER BY s.id, k
            """,
        ),
        (
            "memberships",
            f"""
            INSERT INTO {t["member"]} (session_id, player_id, team_id, joined_at)
            SELECT s.id, {nth("s.id", "j")}, tm.id, s.date_created + j * interval '1 second'
            FROM {t["session"]} s CROSS JOIN LATERAL generate_series(0, {members} - 1) j
            LEFT JOIN {t["team"]} tm
                ON s.num_teams > 0 AND tm.session_id = s.id AND tm.index = j % NULLIF(s.num_teams, 0)
            ORDER BY s.id, j
            """,
        ),
        (
            "invites",
            f"""
            INSERT INTO {t["invite"]} (session_id, player_id, inviting_player_id, state, date_created,
                                       date_modified, expires_at)
            SELECT s.id, {nth("s.id", "5")}, s.host_id, 'pending', s.date_created, s.date_created,
                CASE WHEN s.id % 2 = 0 THEN date_trunc('second', now()) + interval '7 days' END
            FROM {t["session"]} s WHERE s.id % 3 = 0
            UNION ALL
            SELECT s.id, {nth("s.id", "6")}, s.host_id, 'declined', s.date_created, s.date_modified, NULL
            FROM {t["session"]} s WHERE s.id % 9 = 0
            """,
        ),
        (
            "reservations",
            f"""
            INSERT INTO {t["reservation"]} (session_id, player_id, created_by_id, date_created, expires_at)
            SELECT s.id, {nth("s.id", "7")}, s.host_id, now(), now() + interval '1 day'
            FROM {t["session"]} s WHERE s.id % 10 = 4
            """,
        ),
        (
            "reserved places on the session rows",
            f"""
            UPDATE {t["session"]} s SET reservations_doc = held.doc
            FROM (SELECT r.session_id, jsonb_agg(jsonb_build_object(
                      'uid', pl.uid::text,
                      'expiresAt', {iso("r.expires_at")}
                  ) ORDER BY r.date_created, r.id) AS doc
                  FROM {t["reservation"]} r JOIN {t["player"]} pl ON pl.id = r.player_id GROUP BY r.session_id) held
            WHERE s.id = held.session_id
            """,
        ),
        (
            "view stamps",
            f"""
            INSERT INTO {t["stamp"]} (player_uid, changed_at)
            SELECT uid, now() - interval '1 day' FROM {t["player"]}
            """,
        ),
    ]
    # One transaction: now() is one instant for every row (expiries rendered into invites_doc
    # must equal the Invite rows' own).
    with transaction.atomic(), connection.cursor() as cursor:
        for name, sql in steps:
            step = time.monotonic()
            # The formulas use % (modulo); psycopg reads a lone % as a placeholder.
            cursor.execute(re.sub(r"%(?!\()", "%%", sql), params)
            rows = cursor.rowcount
            # Statistics of the table just filled, for the next steps' plans: without them the
            # planner takes it for empty and scans it in full for each row of the next (the
            # sessions' documents look up 200 000 players a few times per session at 1 M).
            cursor.execute(f"ANALYZE {t[STEP_TABLES[name]]}")
            log(f"bench: {name}: {rows} rows in {time.monotonic() - step:.1f}s")

    # Accounts the driver issues tokens for, and the groups granting the API scopes.
    players = Group.objects.create(name="bench-players")
    players.permissions.set(
        Permission.objects.filter(
            content_type__app_label="sessions_app", codename__in=[SCOPE_READ_PLAYER_SELF, "customise_session"]
        )
    )
    servers = Group.objects.create(name="bench-servers")
    servers.permissions.set(Permission.objects.filter(content_type__app_label="sessions_app", codename=SCOPE_ANY))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {t["player"]} (id, password, is_superuser, username, first_name, last_name, email,
                                       is_staff, is_active, date_joined, uid)
            SELECT %(p)s + g, %(pw)s, false, 'bench-joiner-' || g, '', '', '', false, true, now(), gen_random_uuid()
            FROM generate_series(1, %(targets)s) g
            """,
            {**params, "targets": config.TARGETS},
        )
        cursor.execute(
            f"INSERT INTO {t['groups']} (player_id, group_id) SELECT id, %s FROM {t['player']}", [players.pk]
        )
        for table in ("player", "session", "team", "member", "invite", "reservation"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{t[table]}', 'id'), (SELECT max(id) FROM {t[table]}))"
            )
    server = Player.objects.create_user("bench-server", password="bench-password")
    server.groups.add(servers)
    # VACUUM, not only ANALYZE: a fresh load leaves the visibility map empty, and until it is set
    # an index-only scan (count, the deep skip's page of ids) must visit every heap page anyway.
    # Outside any transaction (VACUUM refuses one): the connection is in autocommit here.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    log(f"bench: loaded {n} sessions, {p} players in {time.monotonic() - started:.1f}s")


def check_documents(sample: int = 40) -> int:
    """Compare the stored documents of a sample of sessions (every shape) with what the services
    render from the tables; raises on the first difference. Returns how many were checked."""
    from sessions_app.models import GameSession
    from sessions_app.services.documents import render_documents

    ids = sorted({*range(1, min(config.SESSIONS, 60) + 1), *range(config.SESSIONS - sample, config.SESSIONS + 1)})
    checked = 0
    for session in GameSession.objects.filter(pk__in=ids):
        stored = (session.users_doc, session.teams_doc, session.invites_doc)
        render_documents(session)
        rendered = (session.users_doc, session.teams_doc, session.invites_doc)
        if stored != rendered:
            raise AssertionError(f"session {session.pk}: stored documents {stored} but the services render {rendered}")
        checked += 1
    return checked
