"""Session workflows, one module per kind, each rule written once: the API's views, the admin
and the management commands call these functions (never the ORM for a write of their own).

    sessions    create, update, delete and truncate sessions; the document's ETag; the
                live-session quota of a host
    membership  join, leave, teams, kicks
    join_passwords  hashing and checking join passwords, the wrong-password throttles
    invites     invites and reservations; the pending-invite quota of a session
    lifecycle   status transitions, closing, heartbeats, the sweeper (close_due_sessions),
                purging closed sessions, statistics
    scores      submitting scores, score numbers, importing past scores
    matchmaking quick join: the best session matching the list's filters, or a new one;
                `matching_sessions`, the one function applying those filters
    join_codes  joining by a session's join code, the wrong-code throttle, rotating a code
    events      the session event log's one writer (`record`): every workflow above writes
                its events through it, in its own transaction, after its change
    webhooks    webhook endpoints (register, disable, enable, test), turning events into
                deliveries, sending them signed with retries, replaying them; the worker's pass
    documents   internal: what every write shares (the session row's lock, settling a due
                close, rendering and committing the document with `version` + 1, the players'
                view stamps, player lookups by uid); workflows outside this package do not
                call it, except to read the constants it documents

Callers import the module that owns a workflow and call through it
(`from sessions_app.services import membership`, then `membership.session_join(...)`).
This package re-exports nothing.

Named reads: a read that is one query with a name (visibility, effective status, due,
pending, active) is a QuerySet method in sessions_app/models.py; a read that composes several
(the player's sessions view) lives in sessions_app/reads.py. Neither writes.

Every workflow locks the session row before the rows that hang on it (teams, members,
invites, reservations) and before the players' view stamps, which go in uid order; each
module's docstring states its own order.
"""
